"""Variants of solutions/ch04.py: one per named chapter-4 mistake, plus correct alternatives that must pass."""

from tests.grader.variants import Variant

_LN_FORWARD = """        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift
"""
_GELU_RETURN = """        return 0.5 * x * (1 + torch.tanh(
            torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))
        ))
"""
_GELU_MATH_SQRT = """        import math
        c = math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * x * x * x)))
"""
_BLOCK_FORWARD = """        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        x = x + shortcut
        return x
"""
_SEPARATE_RATES = """            dropout=cfg["drop_rate_attn"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate_shortcut"])
"""

LN, GELU, FF, DNN = "ch04.LayerNorm", "ch04.GELU", "ch04.FeedForward", "ch04.ExampleDeepNeuralNetwork"
BLOCK, GPT, GEN = "ch04.TransformerBlock", "ch04.GPTModel", "ch04.generate_text_simple"

VARIANTS = [
    # ---- LayerNorm
    Variant("ln-unbiased-variance", "ch04", "var = x.var(dim=-1, keepdim=True, unbiased=False)",
            "var = x.var(dim=-1, keepdim=True)", LN, diagnosis="ch04_layernorm_unbiased_variance"),
    Variant("ln-eps-outside-sqrt", "ch04", "norm_x = (x - mean) / torch.sqrt(var + self.eps)",
            "norm_x = (x - mean) / (torch.sqrt(var) + self.eps)", LN, diagnosis="ch04_layernorm_eps_outside_sqrt"),
    Variant("ln-scale-shift-swapped", "ch04", "return self.scale * norm_x + self.shift",
            "return self.shift * norm_x + self.scale", LN, diagnosis="ch04_layernorm_scale_shift_swapped"),
    Variant("ln-no-scale-shift", "ch04", "return self.scale * norm_x + self.shift", "return norm_x", LN,
            diagnosis="ch04_layernorm_no_scale_shift"),
    Variant("ln-missing-eps", "ch04", "norm_x = (x - mean) / torch.sqrt(var + self.eps)",
            "norm_x = (x - mean) / torch.sqrt(var)", LN, diagnosis="ch04_layernorm_missing_eps"),
    Variant("ln-functional-layer-norm", "ch04", _LN_FORWARD,
            "        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.scale, self.shift, self.eps)\n",
            LN, passes=True),
    # ---- GELU
    Variant("gelu-erf-exact", "ch04", _GELU_RETURN, "        return torch.nn.functional.gelu(x)\n", GELU,
            diagnosis="ch04_gelu_erf_exact"),
    Variant("gelu-sigmoid", "ch04", _GELU_RETURN, "        return x * torch.sigmoid(1.702 * x)\n", GELU,
            diagnosis="ch04_gelu_sigmoid_approximation"),
    Variant("gelu-missing-half", "ch04", "return 0.5 * x * (1 + torch.tanh(", "return x * (1 + torch.tanh(", GELU,
            diagnosis="ch04_gelu_missing_half"),
    Variant("gelu-torch-tanh-approximate", "ch04", _GELU_RETURN,
            "        return torch.nn.functional.gelu(x, approximate=\"tanh\")\n", GELU, passes=True),
    # The same formula with a float64 constant and x*x*x: rounding-level differences (4.9e-08 on a
    # gradient of TransformerBlock before the tolerances followed numerical analysis) never fail.
    *[Variant(f"gelu-math-sqrt-{short}", "ch04", _GELU_RETURN, _GELU_MATH_SQRT, item, passes=True)
      for short, item in (("gelu", GELU), ("block", "ch04.TransformerBlock"), ("gpt", "ch04.GPTModel"))],
    # ---- FeedForward
    Variant("ff-no-activation", "ch04", "            GELU(),\n            nn.Linear(4",
            "            nn.Identity(),\n            nn.Linear(4", FF, diagnosis="ch04_ff_missing_activation"),
    Variant("ff-relu", "ch04", "            GELU(),\n            nn.Linear(4", "            nn.ReLU(),\n            nn.Linear(4",
            FF, diagnosis="ch04_ff_relu_activation"),
    # ---- ExampleDeepNeuralNetwork
    Variant("dnn-shortcut-not-applied", "ch04", "if self.use_shortcut and x.shape == layer_output.shape:",
            "if False and x.shape == layer_output.shape:", DNN, diagnosis="ch04_shortcut_not_applied"),
    Variant("dnn-shortcut-ignores-flag", "ch04", "if self.use_shortcut and x.shape == layer_output.shape:",
            "if x.shape == layer_output.shape:", DNN, diagnosis="ch04_shortcut_ignores_flag"),
    # ---- TransformerBlock
    Variant("block-no-shortcuts", "ch04", "        x = x + shortcut\n", "        x = x\n", BLOCK, count=2,
            diagnosis="ch04_block_missing_shortcuts"),
    Variant("block-no-attention-shortcut", "ch04", "        x = x + shortcut\n", "        x = x\n", BLOCK,
            diagnosis="ch04_block_missing_attention_shortcut"),
    Variant("block-no-ff-shortcut", "ch04", "        x = self.drop_shortcut(x)\n        x = x + shortcut\n        return x",
            "        x = self.drop_shortcut(x)\n        return x", BLOCK, diagnosis="ch04_block_missing_ff_shortcut"),
    Variant("block-post-layernorm", "ch04", _BLOCK_FORWARD,
            "        x = self.norm1(x + self.drop_shortcut(self.att(x)))\n"
            "        x = self.norm2(x + self.drop_shortcut(self.ff(x)))\n        return x\n",
            BLOCK, diagnosis="ch04_block_post_layernorm"),
    Variant("block-shortcut-after-norm", "ch04", _BLOCK_FORWARD,
            _BLOCK_FORWARD.replace("        shortcut = x\n        x = self.norm1(x)\n",
                                   "        x = self.norm1(x)\n        shortcut = x\n")
            .replace("        shortcut = x\n        x = self.norm2(x)\n", "        x = self.norm2(x)\n        shortcut = x\n"),
            BLOCK, diagnosis="ch04_block_shortcut_after_norm"),
    Variant("block-norms-swapped", "ch04", _BLOCK_FORWARD,
            _BLOCK_FORWARD.replace("self.norm1(x)", "self.NORM_A(x)").replace("self.norm2(x)", "self.norm1(x)")
            .replace("self.NORM_A(x)", "self.norm2(x)"),
            BLOCK, diagnosis="ch04_block_norms_swapped"),
    Variant("block-no-shortcut-dropout", "ch04", "        x = self.drop_shortcut(x)\n", "", BLOCK, count=0,
            diagnosis="ch04_block_missing_shortcut_dropout"),
    Variant("block-dropout-in-eval", "ch04", "        x = self.drop_shortcut(x)\n",
            "        x = torch.nn.functional.dropout(x, self.drop_shortcut.p, training=True)\n", BLOCK, count=0,
            diagnosis="ch04_dropout_in_eval"),
    Variant("block-one-line-sublayers", "ch04", _BLOCK_FORWARD,
            "        x = x + self.drop_shortcut(self.att(self.norm1(x)))\n"
            "        return x + self.drop_shortcut(self.ff(self.norm2(x)))\n", BLOCK, passes=True),
    # ---- GPTModel
    Variant("gpt-no-position-embeddings", "ch04", "        x = tok_embeds + pos_embeds\n", "        x = tok_embeds\n",
            GPT, diagnosis="ch04_gpt_missing_position_embeddings"),
    Variant("gpt-no-final-norm", "ch04", "        x = self.final_norm(x)\n        logits", "        logits", GPT,
            diagnosis="ch04_gpt_missing_final_norm"),
    Variant("gpt-no-embedding-dropout", "ch04", "        x = self.drop_emb(x)\n", "", GPT,
            diagnosis="ch04_gpt_missing_embedding_dropout"),
    # ---- generate_text_simple
    Variant("generate-first-token-logits", "ch04", "logits = logits[:, -1, :]", "logits = logits[:, 0, :]", GEN,
            diagnosis="ch04_generate_first_token_logits"),
    Variant("generate-no-crop", "ch04", "idx_cond = idx[:, -context_size:]", "idx_cond = idx", GEN,
            diagnosis="ch04_generate_no_crop"),
    Variant("generate-argmax-of-logits", "ch04", "idx_next = torch.argmax(probas, dim=-1, keepdim=True)",
            "idx_next = logits.argmax(dim=-1).unsqueeze(-1)", GEN, passes=True),
    # ---- exercises 4.2 and 4.3
    Variant("ex42-not-on-meta", "ch04", 'with torch.device("meta"):\n        model = GPTModel(cfg)',
            'if True:\n        model = GPTModel(cfg)', "4.2", diagnosis="ch04_model_size_not_on_meta"),
    Variant("ex42-decimal-megabytes", "ch04", "total_params * 4 / (1024 * 1024)", "total_params * 4 / 1e6", "4.2",
            diagnosis="ch04_size_mb_decimal"),
    Variant("ex43-attention-rate-ignored", "ch04", 'dropout=cfg["drop_rate_attn"],', "dropout=0.0,", "4.3",
            diagnosis="ch04_dropout_rate_ignored"),
    Variant("ex43-rates-swapped", "ch04", _SEPARATE_RATES,
            _SEPARATE_RATES.replace('cfg["drop_rate_attn"]', "RATE_A").replace('cfg["drop_rate_shortcut"]',
                                                                               'cfg["drop_rate_attn"]')
            .replace("RATE_A", 'cfg["drop_rate_shortcut"]'), "4.3", diagnosis="ch04_dropout_rates_swapped"),
]
