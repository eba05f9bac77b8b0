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


def test_transposed_and_sliced_results_are_sent_densely_and_accepted() -> None:
    value = protocol.to_plain({"t": torch.arange(12.0).view(3, 4).t(), "s": torch.arange(10)[2:5]})
    back = protocol.decode(protocol.encode(value))
    assert torch.equal(back["t"], torch.arange(12.0).view(3, 4).t())
    assert torch.equal(back["s"], torch.tensor([2, 3, 4]))


@pytest.mark.parametrize("forged", [
    lambda: torch.zeros(1).expand(1000, 1000),  # 4 bytes of storage, 4 MB once materialised
    lambda: torch.zeros(3).as_strided((1000, 3), (0, 1)),  # zero stride
    lambda: torch.arange(10.0).as_strided((5, 4), (1, 1)),  # overlapping rows
    lambda: torch.arange(10.0)[3:],  # a view into a larger storage
    lambda: torch.arange(10.0)[::2],  # gaps
])
def test_tensors_that_are_not_dense_are_refused(forged) -> None:  # type: ignore[no-untyped-def]
    blob = protocol.encode({"value": forged()})  # what a worker bypassing to_plain could send
    assert len(blob) < 10_000
    with pytest.raises(protocol.ProtocolError, match="densely"):
        protocol.decode(blob)


def test_shared_references_are_refused_at_once() -> None:
    node: list[object] = [1]
    for _ in range(60):  # 2**60 leaves when walked naively; a few hundred bytes on the wire
        node = [node, node]
    blob = protocol.encode(node)
    assert len(blob) < 5_000
    with pytest.raises(protocol.ProtocolError, match="same object twice"):
        protocol.decode(blob)
    shared = torch.zeros(4)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(protocol.encode([shared, shared]))
    with pytest.raises(protocol.ProtocolError, match="share one storage"):
        protocol.decode(protocol.encode([shared, shared.view(2, 2)]))


def test_node_and_element_budgets() -> None:
    with pytest.raises(protocol.ProtocolError, match="values"):
        protocol.check_plain([0] * 100, max_nodes=50)
    with pytest.raises(protocol.ProtocolError, match="elements"):
        protocol.check_plain([torch.zeros(30), torch.zeros(30)], max_elements=50)
    with pytest.raises(protocol.ProtocolError, match="elements"):  # 10**10 elements from 4 bytes
        protocol.decode(protocol.encode(torch.zeros(1).expand(100_000, 100_000)))
    with pytest.raises(protocol.ProtocolError, match="64-bit"):
        protocol.decode(protocol.encode([10**40]))
    deep: list[object] = []
    for _ in range(10_000):  # deep nesting is walked without recursion
        deep = [deep]
    protocol.check_plain(deep)


def test_requests_may_share_tensors() -> None:
    weight = torch.randn(4, 3)
    request = {"op": "run", "inputs": {"tok_emb": weight, "out_head": weight}}  # tied weights
    back = protocol.decode_request(protocol.encode(request))
    assert torch.equal(back["inputs"]["tok_emb"], back["inputs"]["out_head"])
