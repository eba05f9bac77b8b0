"""The wire format only carries plain data, read safely, within size limits."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from grader.sandbox import protocol


class Sneaky(torch.Tensor):
    pass


def test_round_trip_of_plain_data() -> None:
    value = {"a": [1, 2.5, "x", None, True], "t": torch.arange(6).view(2, 3)[:, 1:], 3: (1, 2)}
    r, w = os.pipe()
    protocol.send(w, protocol.to_plain(value))
    back = protocol.receive(r)
    assert back["a"] == [1, 2.5, "x", None, True]
    assert torch.equal(back["t"], torch.tensor([[1, 2], [4, 5]]))
    assert back[3] == [1, 2]
    os.close(r)
    os.close(w)


def test_views_are_copied_before_sending() -> None:
    big = torch.zeros(1000, 1000)
    small = protocol.to_plain(big[:2])
    assert len(protocol.encode(small)) < 100_000


def test_tensor_subclasses_become_plain_and_are_rejected_on_arrival() -> None:
    sub = torch.zeros(2).as_subclass(Sneaky)
    assert type(protocol.to_plain(sub)) is torch.Tensor
    with pytest.raises(protocol.ProtocolError):
        protocol.check_plain({"x": sub})
    with pytest.raises(protocol.ProtocolError):
        protocol.check_plain(torch.nn.Parameter(torch.zeros(2)))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_objects_are_refused() -> None:
    with pytest.raises(TypeError):
        protocol.to_plain(object())

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo pwned",))

    with pytest.raises(protocol.ProtocolError):
        protocol.decode(pickle.dumps(Evil()))


def test_size_limit() -> None:
    r, w = os.pipe()
    with pytest.raises(protocol.ProtocolError):
        protocol.send(w, torch.zeros(1000), max_bytes=100)
    os.close(r)
    os.close(w)
