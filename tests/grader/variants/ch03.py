"""Variants of solutions/ch03.py."""

from tests.grader.variants import Variant

_MHA_SOFTMAX = "attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)"
_V2_SCORES = "attn_scores = queries @ keys.T"
_CA_MASK = "attn_scores = attn_scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)"

VARIANTS = [
    Variant("mha-no-scaling", "ch03", _MHA_SOFTMAX, "attn_weights = torch.softmax(attn_scores, dim=-1)",
            "ch03.MultiHeadAttention", diagnosis="attention_missing_scaling", count=-1),
    Variant("mha-heads-merged-without-transpose", "ch03", "context_vec = (attn_weights @ values).transpose(1, 2)",
            "context_vec = attn_weights @ values", "ch03.MultiHeadAttention",
            diagnosis="heads_merged_wrong_order"),
    Variant("mha-no-out-proj", "ch03", "return self.out_proj(context_vec)", "return context_vec",
            "ch03.MultiHeadAttention", diagnosis="missing_out_proj"),
    Variant("mha-scaled-by-d-out", "ch03", _MHA_SOFTMAX,
            "attn_weights = torch.softmax(attn_scores / self.d_out ** 0.5, dim=-1)",
            "ch03.MultiHeadAttention", diagnosis="attention_scaled_by_d_out", count=-1),
    # ---- SelfAttention_v1 / _v2 (the softmax line: v1 first, v2 second)
    Variant("v1-scaled-by-d-in", "ch03", _MHA_SOFTMAX,
            "attn_weights = torch.softmax(attn_scores / x.shape[-1] ** 0.5, dim=-1)",
            "ch03.SelfAttention_v1", diagnosis="ch03_scaled_by_d_in", count=1),
    Variant("v2-no-scaling", "ch03", _MHA_SOFTMAX, "attn_weights = torch.softmax(attn_scores, dim=-1)",
            "ch03.SelfAttention_v2", diagnosis="attention_missing_scaling", count=2),
    Variant("v1-divided-by-d-out", "ch03", _MHA_SOFTMAX,
            "attn_weights = torch.softmax(attn_scores / keys.shape[-1], dim=-1)",
            "ch03.SelfAttention_v1", diagnosis="attention_scaled_without_sqrt", count=1),
    Variant("v2-softmax-over-queries", "ch03", _V2_SCORES + "\n        " + _MHA_SOFTMAX,
            _V2_SCORES + "\n        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=0)",
            "ch03.SelfAttention_v2", diagnosis="softmax_wrong_dim", count=-1),
    Variant("v1-einsum", "ch03", "attn_scores = queries @ keys.T",
            'attn_scores = torch.einsum("qd,kd->qk", queries, keys)', "ch03.SelfAttention_v1",
            passes=True, count=1),
    # ---- CausalAttention
    Variant("causal-mask-missing", "ch03", _CA_MASK, "attn_scores = attn_scores", "ch03.CausalAttention",
            diagnosis="mask_not_applied"),
    Variant("causal-mask-inverted", "ch03", _CA_MASK,
            "attn_scores = attn_scores.masked_fill(self.mask.bool().T[:num_tokens, :num_tokens], -torch.inf)",
            "ch03.CausalAttention", diagnosis="mask_inverted"),
    Variant("causal-mask-after-softmax", "ch03",
            _CA_MASK + "\n        " + _MHA_SOFTMAX,
            "attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)\n"
            "        attn_weights = attn_weights.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], 0.0)",
            "ch03.CausalAttention", diagnosis="mask_after_softmax"),
    Variant("causal-mask-filled-with-zero", "ch03", _CA_MASK,
            "attn_scores = attn_scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], 0.0)",
            "ch03.CausalAttention", diagnosis="mask_filled_with_zero"),
    Variant("causal-no-dropout", "ch03", "attn_weights = self.dropout(attn_weights)", "pass",
            "ch03.CausalAttention", diagnosis="ch03_dropout_not_applied", count=1),
    Variant("causal-torch-where", "ch03", _CA_MASK,
            'attn_scores = torch.where(self.mask.bool()[:num_tokens, :num_tokens], float("-inf"), attn_scores)',
            "ch03.CausalAttention", passes=True),
    # ---- MultiHeadAttentionWrapper
    Variant("wrapper-shared-heads", "ch03",
            "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]",
            "[CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)] * num_heads",
            "ch03.MultiHeadAttentionWrapper", diagnosis="ch03_wrapper_heads_share_weights"),
    Variant("wrapper-cat-tokens", "ch03", "torch.cat([head(x) for head in self.heads], dim=-1)",
            "torch.cat([head(x) for head in self.heads], dim=1)", "ch03.MultiHeadAttentionWrapper",
            diagnosis="ch03_wrapper_concat_wrong_dim"),
    # ---- exercises
    Variant("ex31-not-transposed", "ch03", ".weight.T)", ".weight)", "3.1",
            diagnosis="ch03_v1_weights_not_transposed", count=0),
    Variant("ex31-wrong-direction", "ch03",
            "        sa_v1.W_query.copy_(sa_v2.W_query.weight.T)\n"
            "        sa_v1.W_key.copy_(sa_v2.W_key.weight.T)\n"
            "        sa_v1.W_value.copy_(sa_v2.W_value.weight.T)",
            "        sa_v2.W_query.weight.copy_(sa_v1.W_query.T)\n"
            "        sa_v2.W_key.weight.copy_(sa_v1.W_key.T)\n"
            "        sa_v2.W_value.weight.copy_(sa_v1.W_value.T)",
            "3.1", diagnosis="ch03_copy_wrong_direction"),
    Variant("ex32-d-out-two", "ch03", "MultiHeadAttentionWrapper(d_in, 1, context_length, 0.0, num_heads=2)",
            "MultiHeadAttentionWrapper(d_in, 2, context_length, 0.0, num_heads=2)", "3.2",
            diagnosis="ch03_ex32_d_out_not_per_head"),
]
