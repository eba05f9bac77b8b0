"""Appendix A recipes: the toy dataset, accuracy over a loader, DDP (data loader shares, process
group setup, two-process training) and the timing exercise.

Models and datasets that the graded function only receives are built from ``reference.appendix_a``.
The DDP training recipe starts its own processes whose target is :func:`_ddp_child` here: it puts
the reference versions of the items in ``swap`` into the student's package and calls the student's
``train_ddp``. The processes are forked from the worker (the book's ``mp.spawn`` included, see
:func:`forked_spawn`): they have torch, the student's code and the worker's reference view already,
where a spawned process would import torch again (and could not have the view).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import socket
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from grader.catalog import MODULES  # a chapter imported by its plain name (child._PlainChapterNames)
from grader.recipes import Impl, recipe


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pairs(batches: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    for batch in batches:
        out.append(list(batch) if isinstance(batch, (list, tuple)) else [batch])
    return out


@recipe("appendix_a.toy_dataset")
def toy_dataset(impl: Impl, X: torch.Tensor, y: torch.Tensor, batch_size: int = 2) -> dict[str, Any]:
    """Build ``ToyDataset(X, y)``: its length (and whether it is an int), every item, and the
    batches of ``DataLoader(ds, batch_size, shuffle=False)``."""
    from torch.utils.data import DataLoader

    ds = impl.attr("appendix_a", "ToyDataset")(X, y)
    n = len(ds)
    items = [list(ds[i]) if isinstance(ds[i], (list, tuple)) else ds[i] for i in range(n)]
    batches = _pairs(DataLoader(ds, batch_size=batch_size, shuffle=False))
    return {"len": n, "len_is_int": type(ds.__len__()) is int, "items": items, "batches": batches}


class _DropoutNet(torch.nn.Module):
    """A reference NeuralNetwork with heavy dropout before the output: in training mode its
    predictions are noise, so an accuracy computed without ``model.eval()`` differs."""

    def __init__(self, net: torch.nn.Module, p: float) -> None:
        super().__init__()
        self.net = net
        self.drop = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers: Any = self.net.layers
        out: torch.Tensor = layers[4](self.drop(layers[:4](x)))
        return out


def accuracy_model(state_dict: dict[str, torch.Tensor], dropout: float = 0.0) -> torch.nn.Module:
    """The reference ``NeuralNetwork`` with ``state_dict`` loaded (wrapped with dropout if asked)."""
    import reference.appendix_a as ra

    w = state_dict["layers.0.weight"]
    net = ra.NeuralNetwork(int(w.shape[1]), int(state_dict["layers.4.weight"].shape[0]))
    net.load_state_dict(state_dict)
    return _DropoutNet(net, dropout) if dropout > 0 else net


@recipe("appendix_a.accuracy")
def accuracy(impl: Impl, state_dict: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor,
             batch_size: int, dropout: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Call ``compute_accuracy(model, loader)`` on a reference model and a reference loader."""
    from torch.utils.data import DataLoader

    import reference.appendix_a as ra

    model = accuracy_model(state_dict, dropout)
    model.train()
    loader = DataLoader(ra.ToyDataset(X, y), batch_size=batch_size, shuffle=False)
    torch.manual_seed(seed)
    value = impl.attr("appendix_a", "compute_accuracy")(model, loader)
    kind = type(value).__name__
    if isinstance(value, torch.Tensor):
        value = value.detach().to(torch.float64).reshape(-1)[0].item() if value.numel() == 1 else value
    return {"value": value, "type": kind}


# ---- DDP ------------------------------------------------------------------------------------


@recipe("appendix_a.prepare_dataset")
def prepare_dataset(impl: Impl, X: torch.Tensor, y: torch.Tensor, batch_size: int,
                    world_size: int | None = None, rank: int | None = None) -> dict[str, Any]:
    """The batches of the student's ``prepare_dataset`` (for one rank when ``world_size`` is given)."""
    fn = impl.attr("appendix_a", "prepare_dataset")
    if world_size is None:
        loader = fn(X, y, batch_size)
    else:
        loader = fn(X, y, batch_size, world_size, rank)
    return {"batches": _pairs(loader), "len": len(loader)}


@recipe("appendix_a.ddp_setup")
def ddp_setup(impl: Impl) -> dict[str, Any]:
    """Call ``ddp_setup(0, 1, port)`` in this process and describe the process group it made."""
    import torch.distributed as dist

    port = _free_port()
    saved = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT")}
    os.environ.pop("MASTER_ADDR", None)
    os.environ.pop("MASTER_PORT", None)
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= 1
    info: dict[str, Any] = {"port": port, "expected_backend": "nccl" if cuda else "gloo"}
    try:
        impl.attr("appendix_a", "ddp_setup")(0, 1, port)
        info["initialized"] = bool(dist.is_available() and dist.is_initialized())
        if info["initialized"]:
            info["rank"] = int(dist.get_rank())
            info["world_size"] = int(dist.get_world_size())
            info["backend"] = str(dist.get_backend())
        info["master_addr"] = os.environ.get("MASTER_ADDR")
        info["master_port"] = os.environ.get("MASTER_PORT")
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return info


class _PackageSource:
    """The student's modules as the spawned child sees them: the package ``submission``."""

    def module(self, name: str) -> types.ModuleType:
        full = f"submission.{name}"
        if name != "appendix_a" and full not in sys.modules:
            raise ImportError(full)  # not loaded in this child: nothing of it to patch
        return importlib.import_module(full)

    def loaded(self, name: str) -> types.ModuleType | None:
        try:
            return self.module(name)
        except ImportError:
            return None


def _keep_group_to_the_end() -> None:
    """In a forked rank: ``destroy_process_group`` does nothing; the group ends with the process.

    Its C++ destructor joins gloo's threads while holding the GIL, and a gloo thread that still has
    work to finish waits for the GIL: the rank hangs forever (caught with gdb in a stuck rank:
    ``ProcessGroupGloo::~ProcessGroupGloo`` in ``std::thread::join``, a ``pt_gloo_runloop`` thread in
    ``take_gil``; three times in one run of the test suite). A rank here ends with ``os._exit``
    once its work is saved, so nothing needs the group torn down. The book's code imports the
    function by name (``from torch.distributed import destroy_process_group``), so the student's
    modules' own names are replaced too."""
    import torch.distributed as dist

    original = dist.destroy_process_group

    def destroy_process_group(group: Any = None) -> None:
        del group

    dist.destroy_process_group = destroy_process_group
    for name, module in list(sys.modules.items()):
        if module is None or not (name.startswith("submission") or name in MODULES):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, destroy_process_group)


def _ddp_child(rank: int, swap: list[str], marker: str, args: tuple[Any, ...]) -> None:
    """Target of the forked processes: the student's ``train_ddp(rank, *args)`` with ``swap`` applied."""
    from grader.recipes import swapped

    torch.set_num_threads(1)  # a forked OpenMP pool would hang; each rank is one process anyway
    _keep_group_to_the_end()
    source = _PackageSource()
    try:
        with swapped(source, list(swap)):
            source.module("appendix_a").train_ddp(rank, *args)
    except NotImplementedError as exc:
        Path(marker).write_text(str(exc) or "NotImplementedError", "utf-8")
        raise
    # The work is done and saved: leave without the interpreter's teardown, where gloo's threads
    # can abort a rank whose peer already closed its sockets (SIGABRT after a correct run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _spawn_failure(exc: BaseException, marker: Path) -> BaseException:
    """A stub reached in a child becomes NotImplementedError here (so the check is "not started")."""
    if marker.exists():
        return NotImplementedError(marker.read_text("utf-8"))
    text = str(exc)
    if "NotImplementedError" in text:
        last = text.strip().splitlines()[-1]
        return NotImplementedError(last.split("NotImplementedError:", 1)[-1].strip())
    return exc


@recipe("appendix_a.train_ddp")
def train_ddp(impl: Impl, X: torch.Tensor, y: torch.Tensor, init_state_dict: dict[str, torch.Tensor],
              world_size: int = 2, num_epochs: int = 2, lr: float = 0.5, batch_size: int = 2,
              own_run_ddp: bool = False, swap: list[str] | None = None,
              attempt_s: float | None = None) -> dict[str, Any]:
    """Two-process DDP training on gloo; returns the final state_dict rank 0 saved.

    ``own_run_ddp``: call the student's ``run_ddp`` (everything of theirs); otherwise spawn the
    student's ``train_ddp`` from here with the reference versions of ``swap`` in each child.
    ``attempt_s``: processes still running after that long are killed and the run is tried once
    more; two such runs give ``{"stalled": seconds}`` (the suite says what usually hangs DDP).
    """
    for attempt in range(2):
        try:
            return _train_ddp_once(impl, X, y, init_state_dict, world_size, num_epochs, lr, batch_size,
                                   own_run_ddp, swap, attempt_s)
        except DdpStalled:
            # A stuck try of correct code is run again and finishes (the gloo teardown deadlock that
            # caused it is avoided: _keep_group_to_the_end); code that really hangs hangs again.
            if attempt == 1:
                return {"saved": False, "stalled": attempt_s}
        except Exception as exc:  # noqa: BLE001
            # A rank killed by SIGABRT at teardown is a known gloo flake, not the student's fault:
            # try once more (a real crash fails again).
            if attempt == 1 or "SIGABRT" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _threads_then(fn: Any) -> Any:
    def run(*args: Any) -> Any:
        torch.set_num_threads(1)  # a forked OpenMP pool would hang; each rank is one process anyway
        _keep_group_to_the_end()
        fn(*args)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the work is done: no teardown of gloo's threads (see _keep_group_to_the_end)

    return run


class DdpStalled(Exception):
    """The DDP processes of one attempt did not all finish within its time (see :func:`_joined`)."""


def _joined(context: Any, attempt_s: float | None) -> None:
    """Wait for the processes of ``context`` (``torch.multiprocessing``'s ``ProcessContext``); past
    ``attempt_s`` kill them all and raise :class:`DdpStalled`. A failure of one process is raised
    as ``join`` raises it."""
    import time

    deadline = None if attempt_s is None else time.monotonic() + attempt_s
    while not context.join(timeout=0.5):
        if deadline is not None and time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            for process in context.processes:
                process.join()
            raise DdpStalled(f"{attempt_s:g}")


@contextmanager
def forked_spawn(attempt_s: float | None = None) -> Iterator[None]:
    """``torch.multiprocessing.spawn`` (what the book's ``run_ddp`` calls) forks its processes
    instead of starting fresh interpreters, for the duration: the same code runs, with the same
    arguments, without a second and third import of torch. Where there is no fork, nothing changes.
    With ``attempt_s``, processes still running after that long are killed (:func:`_joined`)."""
    mp: Any = importlib.import_module("torch.multiprocessing")

    if "fork" not in multiprocessing.get_all_start_methods():
        yield
        return
    original = mp.spawn

    def spawn(fn: Any, args: tuple[Any, ...] = (), nprocs: int = 1, join: bool = True, daemon: bool = False,
              start_method: str = "spawn") -> Any:
        context = mp.start_processes(_threads_then(fn), args=args, nprocs=nprocs, join=False,
                                     daemon=daemon, start_method="fork")
        if not join:
            return context
        _joined(context, attempt_s)
        return None

    mp.spawn = spawn
    try:
        yield
    finally:
        mp.spawn = original


def _train_ddp_once(impl: Impl, X: torch.Tensor, y: torch.Tensor, init_state_dict: dict[str, torch.Tensor],
                    world_size: int, num_epochs: int, lr: float, batch_size: int, own_run_ddp: bool,
                    swap: list[str] | None, attempt_s: float | None) -> dict[str, Any]:
    mp: Any = importlib.import_module("torch.multiprocessing")

    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "not_implemented.txt"
        try:
            if own_run_ddp:
                with forked_spawn(attempt_s):
                    state = impl.attr("appendix_a", "run_ddp")(world_size, num_epochs, X, y, init_state_dict,
                                                               lr=lr, batch_size=batch_size)
            else:
                result_path = str(Path(tmp) / "final_state_dict.pt")
                args = (world_size, num_epochs, X, y, init_state_dict, lr, batch_size, _free_port(),
                        result_path)
                method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
                context = mp.start_processes(_ddp_child, args=(list(swap or []), str(marker), args),
                                             nprocs=world_size, join=False, start_method=method)
                _joined(context, attempt_s)
                if not os.path.exists(result_path):
                    return {"saved": False}
                state = torch.load(result_path, weights_only=True)
        except DdpStalled:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised, as NotImplementedError for a stub
            raise _spawn_failure(exc, marker) from None
    return {"saved": True, "state": dict(state)}


@recipe("appendix_a.time_matmul", cached=False)
def time_matmul(impl: Impl, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call ``exercise_a_4_time_matmul(**kwargs)``; say whether the device it names exists here.

    A ``ValueError`` comes back as ``{"error": "ValueError"}`` (zero repeats must raise it).
    """
    try:
        result = impl.attr("appendix_a", "exercise_a_4_time_matmul")(**kwargs)
    except ValueError as exc:
        return {"error": "ValueError", "message": str(exc)}
    info: dict[str, Any] = {"result": result, "type": type(result).__name__}
    device = result.get("device") if isinstance(result, dict) else None
    info["device_ok"] = False
    if isinstance(device, (str, torch.device)):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            dev = None
        if dev is not None:
            available = {"cpu": True, "cuda": torch.cuda.is_available(),
                         "mps": torch.backends.mps.is_available()}
            info["device_ok"] = bool(available.get(dev.type, False))
            info["device_type"] = dev.type
        info["device"] = str(device)
    available_types = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + \
        (["mps"] if torch.backends.mps.is_available() else [])
    info["best_type"] = available_types[1] if len(available_types) > 1 else "cpu"
    return info
