"""Variants of solutions/ch03.py."""

from tests.grader.variants import Variant

_MHA_SOFTMAX = "attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)"

VARIANTS = [
    Variant("mha-no-scaling", "ch03", _MHA_SOFTMAX, "attn_weights = torch.softmax(attn_scores, dim=-1)",
            "ch03.MultiHeadAttention", diagnosis="attention_missing_scaling", count=-1),
]
