"""The grading device when it is certain without importing torch (so the worker can start at once).

``import torch`` takes about a second on the 2-core grading machines, in the trusted process and
again in the worker. The worker's sandbox depends on the device (a GPU's device files are bound
in only for CUDA), so it can start before the trusted process has imported torch only when the
device is already certain: ``cpu`` asked for by name (``--device`` or ``LLMGRADE_DEVICE``), or
``auto`` with a torch build that has neither CUDA nor ROCm, on a machine without Apple's MPS.
Otherwise (``None``) the device is resolved with torch first, as before. Either way
``fixtures.resolve_device`` still decides, and a worker started on a guess that disagrees with it
is replaced (it cannot disagree on the cases above, but nothing depends on that).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path

from grader.runner.contract import AUTO_DEVICE

DEVICE_ENV_VAR = "LLMGRADE_DEVICE"  # reference.device.ENV_VAR (that module imports torch)
CPU = "cpu"


def certain_device(requested: str, environ: Mapping[str, str]) -> str | None:
    """``"cpu"`` when the device ``requested`` resolves to the CPU for sure; ``None`` when only torch can tell."""
    choice = requested if requested != AUTO_DEVICE else (environ.get(DEVICE_ENV_VAR) or None)
    if choice is not None:
        return CPU if choice == CPU else None
    if sys.platform == "darwin":  # MPS may be there
        return None
    return CPU if torch_build_is_cpu_only() else None


def torch_build_is_cpu_only(version_file: Path | None = None) -> bool:
    """True when torch's ``version.py`` (read as text, never imported) says it was built with
    neither CUDA nor ROCm (``cuda = None`` and ``hip = None``); False when it cannot tell."""
    if version_file is None:
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            return False
        version_file = Path(spec.origin).with_name("version.py")
    try:
        tree = ast.parse(version_file.read_text("utf-8"))
    except (OSError, SyntaxError, ValueError):
        return False
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        else:
            continue
        if isinstance(value, ast.Constant):
            values[target] = value.value
        else:
            values[target] = value  # computed: not known to be None
    return "cuda" in values and "hip" in values and values["cuda"] is None and values["hip"] is None
