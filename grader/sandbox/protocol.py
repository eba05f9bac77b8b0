"""The wire format between the trusted grader and the worker that runs student code.

Messages are length-prefixed ``torch.save`` blobs of *plain data*: ``None``, ``bool``, ``int``,
``float``, ``str``, lists, tuples, dicts and plain ``torch.Tensor`` objects. They are always read
with ``torch.load(weights_only=True)``, which never unpickles arbitrary objects, and then checked
again by :func:`check_plain` (exact types, no tensor subclasses) before anything compares them.

Replies come from the student's process, so :func:`decode` treats them as hostile: every tensor
must own exactly ``numel * itemsize`` bytes laid out densely (an ``expand``-ed or zero-stride view
would otherwise turn a few bytes on the wire into gigabytes on the trusted side), the total number
of elements and of nodes is capped, and no container, tensor or storage may appear twice (a pickle
of shared references is tiny on the wire and exponential to walk). The walk is iterative and stops
at the first violation, so its cost is linear in the message. Requests come from the trusted side
and may share tensors (tied weights): the worker reads them with :func:`decode_request`.
"""

from __future__ import annotations

import io
import os
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
# torch is imported where it is used: the trusted process can then start the worker before its own
# (slow) torch import, so that the two imports run side by side (grader/checking/fixtures.py).

HEADER = struct.Struct("!Q")
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 32  # what the worker sends back (to_plain); the trusted side counts nodes instead
MAX_NODES = 2_000_000
MAX_ELEMENTS = 64 * 1024 * 1024
_SCALARS = (type(None), bool, int, float, str)


class ProtocolError(Exception):
    """A message that is too large, truncated, or not plain data."""


def to_plain(value: Any, depth: int = 0) -> Any:
    """Convert a result to plain data the trusted side will accept.

    Tensors are detached, moved to the CPU and copied (a view would otherwise send its whole
    storage); ``torch.Size`` and tuples become lists; dtypes and devices become strings.
    Anything else raises ``TypeError`` naming the type.
    """
    import torch

    if depth > MAX_DEPTH:
        raise TypeError("the value is nested too deeply to send back")
    if isinstance(value, torch.Tensor):  # dense and contiguous, as decode() requires
        return value.detach().to("cpu").clone(memory_format=torch.contiguous_format).as_subclass(torch.Tensor)
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


def check_plain(value: Any, max_nodes: int = MAX_NODES, max_elements: int = MAX_ELEMENTS,
                unique: bool = True) -> None:
    """Raise ``ProtocolError`` unless ``value`` is plain data with exact types, within the budgets.

    With ``unique`` (replies) every list, dict and tensor must occur once, and every tensor must
    be dense: contiguous, at offset 0, its storage exactly ``numel * itemsize`` bytes.
    """
    import torch

    seen: set[int] = set()
    storages: set[int] = set()
    nodes = elements = 0
    stack = [value]
    while stack:
        item = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ProtocolError(f"message has more than {max_nodes} values")
        kind = type(item)
        if kind in _SCALARS:
            if kind is int and not -(1 << 63) <= item < (1 << 64):
                raise ProtocolError("integer out of the 64-bit range")
            continue
        if unique:
            if id(item) in seen:
                raise ProtocolError("message refers to the same object twice (shared references)")
            seen.add(id(item))
        if kind is torch.Tensor:
            elements += item.numel()
            if elements > max_elements:
                raise ProtocolError(f"message holds more than {max_elements} tensor elements")
            if unique:
                _check_dense(item, storages)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            for k, v in item.items():
                if type(k) not in (str, int):
                    raise ProtocolError(f"dict key of type {type(k).__name__}")
                stack.append(v)
        else:
            raise ProtocolError(f"value of type {kind.__module__}.{kind.__qualname__} is not plain data")


def _check_dense(tensor: torch.Tensor, storages: set[int]) -> None:
    storage = tensor.untyped_storage()
    if (tensor.storage_offset() != 0 or not tensor.is_contiguous()
            or storage.nbytes() != tensor.numel() * tensor.element_size()):
        raise ProtocolError(f"a tensor of shape {tuple(tensor.shape)} is not laid out densely "
                            f"(strides {tensor.stride()}, {storage.nbytes()} bytes of storage)")
    if tensor.numel() and storage.data_ptr() in storages:
        raise ProtocolError("two tensors share one storage")
    storages.add(storage.data_ptr())


def encode(value: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode(blob: bytes) -> Any:
    """Read a reply from the worker: plain data, dense tensors, no shared references, in budget."""
    value = _load(blob)
    check_plain(value)
    return value


def decode_request(blob: bytes) -> Any:
    """Read a request from the trusted side (in the worker): plain data; tensors may share storage."""
    value = _load(blob)
    check_plain(value, unique=False)
    return value


def _load(blob: bytes) -> Any:
    import torch

    try:
        return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means the message is unusable
        raise ProtocolError(f"message could not be read safely: {type(exc).__name__}: {exc}") from exc


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
    """Read one request (the worker's side of the pipe)."""
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > max_bytes:
        raise ProtocolError(f"message of {size} bytes exceeds the limit of {max_bytes} bytes")
    return decode_request(read_exact(fd, size))
