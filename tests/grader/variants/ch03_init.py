"""Variants of solutions/ch03.py with the bug in ``__init__``: the causal mask buffer is built wrong.

The grader must observe the student's own buffers, never overwrite them with the reference's
(issue 10): each wrong mask fails its item, and the failure says what is wrong.
"""

from tests.grader.variants import Variant

_MASK = 'self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))'
_WRONG = {
    # tril instead of triu: the past hidden, the future visible
    "direction": 'self.register_buffer("mask", torch.tril(torch.ones(context_length, context_length), diagonal=-1))',
    # diagonal=0 also hides each token from itself: rows of only -inf give NaN
    "diagonal": 'self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=0))',
    # ~ on an integer tensor is a bitwise not (-1, -2), so every entry is True: everything masked
    "dtype": 'self.register_buffer("mask", ~torch.tril(torch.ones(context_length, context_length, dtype=torch.long)))',
    # a plain attribute: not in the state_dict, does not move with .to(device)
    "not-buffer": "self.mask = torch.tril(torch.ones(context_length, context_length), diagonal=-1)",
    # a buffer that is not saved in the state_dict
    "non-persistent": 'self.register_buffer("mask", torch.tril(torch.ones(context_length, context_length), '
                      'diagonal=-1), persistent=False)',
}
_BOOL = 'self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1))'

# (item, occurrence of the mask line, short name, points for: a wrong mask the forward pass uses
# (direction, diagonal, dtype), and a mask missing from the state_dict (not a buffer, not persistent))
_ITEMS = (("ch03.CausalAttention", 1, "causal", {"direction": 0.43, "diagonal": 0.43, "dtype": 0.43}, 0.0),
          ("ch03.MultiHeadAttention", -1, "mha", {"direction": 1.88, "diagonal": 1.25, "dtype": 1.25}, 0.62))

VARIANTS = []
for _item, _count, _short, _points, _unsaved in _ITEMS:
    VARIANTS += [
        Variant(f"{_short}-init-mask-direction", "ch03", _MASK, _WRONG["direction"], _item, count=_count,
                diagnosis="mask_inverted", message_id="module.buffer_wrong", points=_points["direction"]),
        Variant(f"{_short}-init-mask-diagonal", "ch03", _MASK, _WRONG["diagonal"], _item, count=_count,
                message_id="module.buffer_wrong", points=_points["diagonal"]),
        Variant(f"{_short}-init-mask-dtype", "ch03", _MASK, _WRONG["dtype"], _item, count=_count,
                message_id="module.buffer_wrong", points=_points["dtype"]),
        # not in the state_dict: the structure checks say so by name before any forward pass
        Variant(f"{_short}-init-mask-not-buffer", "ch03", _MASK, _WRONG["not-buffer"], _item, count=_count,
                message_id="compare.keys_missing", points=_unsaved),
        Variant(f"{_short}-init-mask-non-persistent", "ch03", _MASK, _WRONG["non-persistent"], _item,
                count=_count, message_id="compare.keys_missing", points=_unsaved),
        Variant(f"{_short}-init-bool-mask", "ch03", _MASK, _BOOL, _item, count=_count, passes=True),
    ]
