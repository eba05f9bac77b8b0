"""The reference's outputs for the suites' fixed inputs, kept between runs (trusted side).

Most of what the trusted process computes on ``reference/`` depends only on the recipe and its
inputs: a forward pass on fixed weights, a tokenization, a tiny training run from a seed. Grading a
submission computes each of them again, and so does grading the next one. This cache keeps the
plain-data result of every ``ref.run`` call under a key made of the recipe's name and its inputs
(tensors by dtype, shape and bytes), in a folder named after everything else the result depends
on: the reference's and the recipes' source, torch's version, the device, the CPU's vector unit
(float results may differ between them) and Python's version. A key not seen before is computed
and stored; results computed from the student's own outputs simply never hit.

It lives in the user's cache (``$LLMGRADE_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmgrade``, else
``~/.cache/llmgrade``; ``LLMGRADE_CACHE_DIR=off`` turns it off), a folder of mode 0700. Student code
never sees it: the worker's sandbox mounts no home folder. Without the sandbox a hostile submission
could write there, as it could rewrite the installed grader itself; ``docs/security.md`` says so.
Entries are read with ``torch.load(weights_only=True)``: nothing in them is ever executed. How long
the reference took is kept too (relative to an idle machine), so a cached call still paces the
student's time limit (``grader/checking/pace.py``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import struct
import sys
from pathlib import Path
from typing import Any

from grader.sandbox import protocol

ENV = "LLMGRADE_CACHE_DIR"
MAX_ENTRY_BYTES = 32 * 1024 * 1024
MAX_FOLDER_BYTES = 512 * 1024 * 1024
KEEP_FOLDERS = 3  # cache folders of other fingerprints kept (another torch, another device ...)
_GRADER = Path(__file__).resolve().parents[1]


def cache_root() -> Path | None:
    """The cache's folder, or None when it is turned off."""
    chosen = os.environ.get(ENV, "")
    if chosen.lower() in ("off", "0", "no", "none"):
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmgrade"


def fingerprint(device: str) -> str:
    """What a cached result depends on besides its recipe and inputs."""
    import torch

    from grader.sandbox.views import REFERENCE_DIR

    digest = hashlib.sha256()
    for folder in (REFERENCE_DIR, _GRADER / "recipes"):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    for part in (torch.__version__, device, capability, platform.machine(), sys.version.split()[0]):
        digest.update(b"\0" + str(part).encode())
    return digest.hexdigest()[:32]


class Uncachable(Exception):
    """An input that cannot be part of a key (not plain data)."""


def key(recipe: str, inputs: dict[str, Any]) -> str:
    digest = hashlib.sha256(recipe.encode() + b"\0")
    _feed(digest, inputs)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    import torch

    if value is None or isinstance(value, (bool, int, float, str)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"tensor:{tensor.dtype}:{list(tensor.shape)}:".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(b"dict{")
        for name, item in value.items():  # in order: a state_dict's order is part of it
            _feed(digest, name)
            _feed(digest, item)
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"list[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        raise Uncachable(type(value).__name__)


class ReferenceCache:
    """``get``/``put`` of one device's reference results (a no-op when the cache is off)."""

    def __init__(self, device: str, root: Path | None = None) -> None:
        root = root if root is not None else cache_root()
        self.folder: Path | None = None
        if root is not None:
            self.folder = root / "reference" / fingerprint(device)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                os.chmod(root, 0o700)
                _prune(root / "reference", keep=self.folder)
            except OSError:
                self.folder = None
        self.hits = self.misses = 0

    def _path(self, recipe: str, inputs: dict[str, Any]) -> Path | None:
        if self.folder is None:
            return None
        try:
            name = key(recipe, inputs)
        except Uncachable:
            return None
        return self.folder / name[:2] / f"{name}.pt"

    def get(self, recipe: str, inputs: dict[str, Any]) -> tuple[Any, float] | None:
        """``(result, idle seconds)`` when cached."""
        path = self._path(recipe, inputs)
        if path is None or not path.is_file():
            self.misses += 1
            return None
        try:
            blob = path.read_bytes()
            (seconds,) = struct.unpack("!d", blob[:8])
            value = protocol.decode_request(blob[8:])
        except (OSError, struct.error, protocol.ProtocolError, RuntimeError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value, float(seconds)

    def put(self, recipe: str, inputs: dict[str, Any], value: Any, idle_seconds: float) -> None:
        path = self._path(recipe, inputs)
        if path is None:
            return
        try:
            blob = struct.pack("!d", idle_seconds) + protocol.encode(value)
            if len(blob) > MAX_ENTRY_BYTES or _size(path.parent.parent) + len(blob) > MAX_FOLDER_BYTES:
                return
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            os.replace(tmp, path)  # a reader never sees half an entry
            _sizes[path.parent.parent] += len(blob)
        except (OSError, TypeError, ValueError):
            pass


_sizes: dict[Path, int] = {}


def _size(folder: Path) -> int:
    """The folder's size, measured once per process and then counted up (an estimate is enough)."""
    if folder not in _sizes:
        _sizes[folder] = sum(p.stat().st_size for p in folder.rglob("*.pt") if p.is_file())
    return _sizes[folder]


def _prune(parent: Path, keep: Path) -> None:
    """Keep the current folder and the most recently used few others."""
    others = sorted((p for p in parent.iterdir() if p.is_dir() and p != keep), key=lambda p: p.stat().st_mtime)
    for old in others[:-KEEP_FOLDERS] if len(others) > KEEP_FOLDERS else []:
        for path in sorted(old.rglob("*"), reverse=True):
            try:
                path.rmdir() if path.is_dir() else path.unlink()
            except OSError:
                pass
        try:
            old.rmdir()
        except OSError:
            pass
    os.utime(keep)
