"""Variants of solutions/appendix_e.py."""

from tests.grader.variants import Variant

_SCALED = "return (self.alpha / self.rank) * (x @ self.A @ self.B)"
_SUM = "return self.linear(x) + self.lora(x)"

VARIANTS = [
    # LoRALayer
    Variant("e-lora-printed-book-scaling", "appendix_e", _SCALED, "return self.alpha * (x @ self.A @ self.B)",
            "appendix_e.LoRALayer", passes=True),
    Variant("e-lora-einsum", "appendix_e", _SCALED,
            'return self.alpha / self.rank * torch.einsum("...i,ir,ro->...o", x, self.A, self.B)',
            "appendix_e.LoRALayer", passes=True),
    Variant("e-lora-alpha-ignored", "appendix_e", _SCALED, "return x @ self.A @ self.B",
            "appendix_e.LoRALayer", diagnosis="appendix_e_lora_alpha_ignored"),
    Variant("e-lora-b-random", "appendix_e", "self.B = torch.nn.Parameter(torch.zeros(rank, out_dim))",
            "self.B = torch.nn.Parameter(torch.randn(rank, out_dim))", "appendix_e.LoRALayer",
            diagnosis="appendix_e_lora_b_random_init"),
    # LinearWithLoRA
    Variant("e-wrap-missing-linear", "appendix_e", _SUM, "return self.lora(x)", "appendix_e.LinearWithLoRA",
            diagnosis="appendix_e_lora_missing_linear"),
    Variant("e-wrap-update-missing", "appendix_e", _SUM, "return self.linear(x)", "appendix_e.LinearWithLoRA",
            diagnosis="appendix_e_lora_update_missing"),
    Variant("e-wrap-printed-lora-integration", "appendix_e", _SCALED, "return self.alpha * (x @ self.A @ self.B)",
            "appendix_e.LinearWithLoRA", passes=True),
    # replace_linear_with_lora
    Variant("e-replace-not-recursive", "appendix_e", "            replace_linear_with_lora(module, rank, alpha)",
            "            pass", "appendix_e.replace_linear_with_lora", diagnosis="appendix_e_replace_not_recursive"),
    Variant("e-replace-duck-typing", "appendix_e", "if isinstance(module, torch.nn.Linear):",
            'if hasattr(module, "in_features"):', "appendix_e.replace_linear_with_lora",
            diagnosis="appendix_e_replace_wraps_non_linear"),
    Variant("e-replace-wraps-twice", "appendix_e", "        elif isinstance(module, LinearWithLoRA):\n            continue\n",
            "", "appendix_e.replace_linear_with_lora", passes=True,  # the book's form: idempotence is beyond it
            extension="appendix_e_replace_wraps_twice"),
]
