"""Variants of solutions/appendix_d.py."""

from tests.grader.variants import Variant

_MAX = "max_grad_param = float(param.grad.detach().max())"
_CLIP = "if global_step >= warmup_steps:"

VARIANTS = [
    # find_highest_gradient
    Variant("d-abs-max", "appendix_d", _MAX, "max_grad_param = float(param.grad.detach().abs().max())",
            "appendix_d.find_highest_gradient", diagnosis="appendix_d_abs_max_gradient"),
    Variant("d-max-not-compared", "appendix_d", "if max_grad is None or max_grad_param > max_grad:", "if True:",
            "appendix_d.find_highest_gradient", diagnosis="appendix_d_max_not_compared"),
    Variant("d-max-as-tensor-like-the-book", "appendix_d", _MAX, "max_grad_param = param.grad.data.flatten().max()",
            "appendix_d.find_highest_gradient", passes=True),
    # train_model
    Variant("d-warmup-off-by-one", "appendix_d", "tokens_seen, global_step = 0, -1", "tokens_seen, global_step = 0, 0",
            "appendix_d.train_model", diagnosis="appendix_d_warmup_off_by_one"),
    Variant("d-cosine-to-zero", "appendix_d",
            "return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))",
            "return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))",
            "appendix_d.train_model", diagnosis="appendix_d_cosine_to_zero"),
    Variant("d-lr-not-set", "appendix_d", 'param_group["lr"] = lr', 'param_group.setdefault("lr", lr)',
            "appendix_d.train_model", diagnosis="appendix_d_lr_not_set_on_optimizer"),
    Variant("d-clip-never", "appendix_d", _CLIP, "if False:", "appendix_d.train_model",
            diagnosis="appendix_d_clipping_never"),
    Variant("d-clip-always", "appendix_d", _CLIP, "if True:", "appendix_d.train_model",
            diagnosis="appendix_d_clipping_always"),
    Variant("d-clip-printed-book", "appendix_d", _CLIP, "if global_step > warmup_steps:", "appendix_d.train_model",
            passes=True),
]
