"""The wire format between the trusted grader and the worker that runs student code.

Messages are length-prefixed ``torch.save`` blobs of *plain data*: ``None``, ``bool``, ``int``,
``float``, ``str``, lists, tuples, dicts and plain ``torch.Tensor`` objects. They are always read
with ``torch.load(weights_only=True)``, which never unpickles arbitrary objects, and then checked
again by :func:`check_plain` (exact types, no tensor subclasses) before anything compares them.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any

import torch

HEADER = struct.Struct("!Q")
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 32
_SCALARS = (type(None), bool, int, float, str)


class ProtocolError(Exception):
    """A message that is too large, truncated, or not plain data."""


def to_plain(value: Any, depth: int = 0) -> Any:
    """Convert a result to plain data the trusted side will accept.

    Tensors are detached, moved to the CPU and copied (a view would otherwise send its whole
    storage); ``torch.Size`` and tuples become lists; dtypes and devices become strings.
    Anything else raises ``TypeError`` naming the type.
    """
    if depth > MAX_DEPTH:
        raise TypeError("the value is nested too deeply to send back")
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().as_subclass(torch.Tensor)
    if type(value) in _SCALARS:
        return value
    if isinstance(value, (bool, int, float, str)):  # numpy scalars, int subclasses, enums...
        for base in (bool, int, float, str):
            if isinstance(value, base):
                return base(value)
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, dict):
        return {_plain_key(k): to_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, depth + 1) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():  # numpy 0-d values
        return to_plain(item(), depth + 1)
    raise TypeError(f"a value of type {type(value).__module__}.{type(value).__qualname__} "
                    "cannot be sent back (only tensors, numbers, strings, lists and dicts)")


def _plain_key(key: Any) -> str | int:
    if type(key) in (str, int):
        return key  # type: ignore[no-any-return]
    if isinstance(key, (str, int)):
        return str(key) if isinstance(key, str) else int(key)
    return str(key)


def check_plain(value: Any, depth: int = 0) -> None:
    """Raise ``ProtocolError`` unless ``value`` is plain data with exact types."""
    if depth > MAX_DEPTH:
        raise ProtocolError("message nested too deeply")
    kind = type(value)
    if kind is torch.Tensor or kind in _SCALARS:
        return
    if kind is list or kind is tuple:
        for v in value:
            check_plain(v, depth + 1)
        return
    if kind is dict:
        for k, v in value.items():
            if type(k) not in (str, int):
                raise ProtocolError(f"dict key of type {type(k).__name__}")
            check_plain(v, depth + 1)
        return
    raise ProtocolError(f"value of type {kind.__module__}.{kind.__qualname__} is not plain data")


def encode(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode(blob: bytes) -> Any:
    try:
        value = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means the message is unusable
        raise ProtocolError(f"message could not be read safely: {type(exc).__name__}: {exc}") from exc
    check_plain(value)
    return value


def send(fd: int, value: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    blob = encode(value)
    if len(blob) > max_bytes:
        raise ProtocolError(f"message of {len(blob)} bytes exceeds the limit of {max_bytes} bytes")
    _write_all(fd, HEADER.pack(len(blob)) + blob)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > max_bytes:
        raise ProtocolError(f"message of {size} bytes exceeds the limit of {max_bytes} bytes")
    return decode(read_exact(fd, size))
