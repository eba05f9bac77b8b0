"""Hidden checks for appendix_a.train_ddp (A.9): prepare_dataset's share per rank, ddp_setup, and
two-process training on gloo compared with single-process training of the same global batches."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.compare import expect_equal, expect_state_keys, expect_tensor
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.appendix_a import share_mistakes, train_single_process
from grader.checking.tolerance import policy, within
from grader.messages import phrase

pytestmark = component("appendix_a", "train_ddp", section="A.9",
                       title="Data-parallel training with DistributedDataParallel", points=3,
                       symbols=("ddp_setup", "prepare_dataset", "train_ddp", "run_ddp"),
                       depends=("appendix_a.NeuralNetwork", "appendix_a.ToyDataset"))

DEPS = ("appendix_a.NeuralNetwork", "appendix_a.ToyDataset")
DDP_TIME_LIMIT_S = 90


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    # label i is the example's index, so a batch of labels says which examples a rank got
    return X, torch.arange(n)


def _indices(got: dict[str, Any], what: str) -> list[list[int]]:
    out = []
    for b, batch in enumerate(got["batches"]):
        if len(batch) != 2 or not all(type(t) is torch.Tensor for t in batch):
            raise GradeFailure("appendix_a.item_not_pair", what=phrase("what.batch", b=b, what=what), got=len(batch))
        out.append([int(i) for i in batch[1].tolist()])
    return out


def _share(student: Any, ref: Any, n: int, batch_size: int, world_size: int | None = None,
           rank: int | None = None) -> None:
    X, y = _data(n)
    args = dict(X=X, y=y, batch_size=batch_size, world_size=world_size, rank=rank)
    call = f"prepare_dataset(X, y, batch_size={batch_size}" + (
        f", world_size={world_size}, rank={rank})" if world_size is not None else ")")
    what = phrase("what.call_with_examples", call=call, n=n)
    expected = ref.run("appendix_a.prepare_dataset", **args)
    got = student.run("appendix_a.prepare_dataset", swap=DEPS, what=what, **args)
    got_idx, want_idx = _indices(got, what), _indices(expected, what)
    if got_idx != want_idx:
        diagnosis = None
        if world_size is not None:
            wrong = share_mistakes(n, world_size, rank or 0, batch_size)
            diagnosis = next((d for d, v in wrong.items() if v == got_idx and v != want_idx), None)
        raise GradeFailure("appendix_a.ddp_share", what=what, expected=want_idx, got=got_idx,
                           diagnosis=diagnosis)
    for b, (g, e) in enumerate(zip(got["batches"], expected["batches"])):
        expect_tensor(g[0], e[0], phrase("what.features_batch_2", b=b, what=what), token_dim=None)
    expect_equal(got["len"], expected["len"], f"len({what})")


def test_prepare_dataset_single_process(student, ref):
    """Without world_size: the data in order, full batches only (drop_last)."""
    _share(student, ref, 9, batch_size=4)


def test_prepare_dataset_rank_shares(student, ref):
    """World size 2: rank 0 gets examples 0, 2, 4, ... and rank 1 gets 1, 3, 5, ... in order."""
    _share(student, ref, 8, batch_size=2, world_size=2, rank=0)
    _share(student, ref, 8, batch_size=2, world_size=2, rank=1)


def test_prepare_dataset_uneven_split(student, ref):
    """9 examples over 3 ranks in batches of 2: every rank runs the same number of full batches."""
    for rank in range(3):
        _share(student, ref, 9, batch_size=2, world_size=3, rank=rank)


def test_ddp_setup_world_of_one(student):
    """ddp_setup(0, 1, port) in one process: a process group of one on 127.0.0.1:port."""
    got = student.run("appendix_a.ddp_setup", what="ddp_setup(0, 1, port)", time_limit_s=30)
    what = "ddp_setup(rank=0, world_size=1, master_port)"
    if not got.get("initialized"):
        raise GradeFailure("appendix_a.ddp_not_initialized", what=what)
    expect_equal(got["master_addr"], "127.0.0.1", f"os.environ['MASTER_ADDR'] after {what}")
    expect_equal(got["master_port"], str(got["port"]), f"os.environ['MASTER_PORT'] after {what}")
    expect_equal(got["rank"], 0, f"torch.distributed.get_rank() after {what}")
    expect_equal(got["world_size"], 1, f"torch.distributed.get_world_size() after {what}")
    expect_equal(got["backend"], got["expected_backend"], phrase("what.backend_chosen_by", what=what))


def _train(student: Any, *, own_run_ddp: bool, swap: tuple[str, ...]) -> None:
    X, _ = _data(8, seed=3)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).long()
    import reference.appendix_a as ra

    torch.manual_seed(5)
    init = {k: v.clone() for k, v in ra.NeuralNetwork(2, 2).state_dict().items()}
    world, epochs, lr, batch = 2, 2, 0.5, 2
    what = (f"run_ddp(world_size={world}, num_epochs={epochs}, ..., lr={lr}, batch_size={batch})" if own_run_ddp
            else phrase("what.train_ddp_in_processes_num", world=world, epochs=epochs, lr=lr, batch=batch))
    # Two tries of a third of the limit each, then the worker still has time to answer.
    attempt_s = round(student.time_limit("appendix_a.train_ddp", DDP_TIME_LIMIT_S) / 3, 1)
    got = student.run("appendix_a.train_ddp", what=what, time_limit_s=DDP_TIME_LIMIT_S, X=X, y=y,
                      init_state_dict=init, world_size=world, num_epochs=epochs, lr=lr, batch_size=batch,
                      own_run_ddp=own_run_ddp, swap=list(swap), attempt_s=attempt_s)
    if got.get("stalled"):
        raise GradeFailure("appendix_a.ddp_stalled", what=what, seconds=got["stalled"])
    if not got.get("saved"):
        raise GradeFailure("appendix_a.ddp_nothing_saved", what=what)
    want = train_single_process(X, y, init, epochs, lr, world * batch)
    state = got["state"]
    expect_state_keys({k: list(v.shape) for k, v in state.items() if type(v) is torch.Tensor},
                      {k: list(v.shape) for k, v in want.items()}, phrase("what.state_dict_saved_by", what=what))
    if all(torch.equal(state[k], init[k]) for k in want):
        raise GradeFailure("appendix_a.ddp_not_trained", what=what)
    wrong = {"appendix_a_ddp_data_not_split": train_single_process(X, y, init, epochs, lr, batch)}
    tol = policy(torch.float32)
    for name, value in want.items():
        close = {d: w[name] for d, w in wrong.items()}
        matches = [d for d, w in wrong.items() if all(
            within(state[k], w[k], tol) for k in want)]
        expect_tensor(state[name], value, phrase("what.after_compared_with_one_process", name=name, what=what, batch=world * batch), tol=tol, token_dim=None,
                      mistakes={matches[0]: close[matches[0]]} if matches else None)


def test_train_ddp_two_processes(student):
    """Your train_ddp (and ddp_setup, prepare_dataset) in 2 gloo processes, with the reference
    NeuralNetwork and ToyDataset; the result must equal one process on the combined batches."""
    _train(student, own_run_ddp=False, swap=DEPS)


@pytest.mark.integration
def test_run_ddp_with_your_code(student):
    """Your run_ddp end to end, with your own NeuralNetwork and ToyDataset."""
    _train(student, own_run_ddp=True, swap=())
