"""The one tolerance policy for comparing student results with the reference.

Grading compares in float64 where it can: correct-but-different implementations (einsum instead
of matmul, ``x * rsqrt(v)`` instead of ``x / sqrt(v)``, a float32 constant) then agree to about
1e-7 relative, while real mistakes differ by far more. Lower precisions and accelerators get
looser bounds, and long reductions scale the absolute bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def describe(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


_BASE: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(1e-6, 1e-8),
    torch.float32: Tolerance(1e-4, 1e-5),
    torch.bfloat16: Tolerance(2e-2, 2e-2),
    torch.float16: Tolerance(5e-3, 5e-3),
}


def policy(dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
           reduction: int = 1) -> Tolerance:
    """Bounds for results of ``dtype`` computed on ``device`` with reductions of ``reduction`` terms."""
    base = _BASE.get(dtype, Tolerance(0.0, 0.0))
    scale = max(1.0, math.sqrt(max(reduction, 1)) / 16)
    if torch.device(device).type != "cpu":
        scale *= 10  # different kernels and summation orders on accelerators
    return Tolerance(base.rtol * scale, base.atol * scale)
