"""Class grading on a Dask cluster: ``llmgrade grade-class SUBMISSIONS --cluster ADDRESS``.

``ADDRESS`` is a running Dask scheduler (``tcp://host:8786``; its workers may come from
``dask-jobqueue`` on Slurm/PBS or from ``dask ssh``, see ``docs/cluster.md``) or ``local:N`` for a
``distributed.LocalCluster`` of N worker processes on this machine.

What travels is plain data: each submission goes out as a content-addressed archive (a
deterministic zip of its Python files and the sha256 of those bytes); the Dask worker checks the
hash and that it runs the same llmgrade and torch as the instructor, grades the archive with the
same :func:`grader.runner.run.grade_submission` the local pool uses (student code runs in that
machine's sandbox, never in the Dask worker itself) and sends back the results document as a dict.
Only the instructor's process writes the gradebook (``grade_class.py``).

Failures are told apart: a worker that refuses (damaged archive, other versions, no sandbox) records
nothing, since the fault is the cluster's; a submission whose grading killed Dask workers more often than the
scheduler allows (``distributed.scheduler.allowed-failures``) is recorded as broken and not retried
on later runs unless ``--force``; a lost scheduler or connection records nothing, so the next
``grade-class`` grades exactly what is still missing.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import socket
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.errors import SetupError
from grader.runner.options import GradeOptions
from grader.results import installed_torch_version
from grader.submission_tree import Limits

LOCAL_PREFIX = "local:"
# How often a task may be lost with the worker that ran it before it is given up on.
DEFAULT_ALLOWED_FAILURES = 2
CONNECT_TIMEOUT_S = 30.0
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so equal files give an equal archive and an equal digest


class ClusterRefusal(SetupError):
    """A Dask worker that will not grade: a fault of the cluster, not of the submission (nothing is
    recorded, so the next run grades the submission again)."""


class ArchiveError(ClusterRefusal):
    """An archive whose bytes do not match its digest, or that cannot be read."""


class VersionMismatch(ClusterRefusal):
    """A Dask worker that runs another llmgrade or torch than the instructor."""


class NoSandbox(ClusterRefusal):
    """A Dask worker without the OS sandbox, when unisolated grading was not allowed."""


@dataclass(frozen=True)
class Archive:
    """A submission's Python files as a deterministic zip, named by the sha256 of its bytes."""

    digest: str
    data: bytes


def pack(root: Path, limits: Limits | None = None) -> Archive:
    """The files :func:`grader.authoring.workspace.content_hash` covers (with the chapter notebooks
    whole), as the tree reader read them (no link out of the submission), in a reproducible zip; a
    submission over a cap is a ``SetupError``."""
    from grader.notebooks.staging import chapter_notebooks_in, read_submission

    tree = read_submission(root, limits)
    buffer = io.BytesIO()
    notebooks = list(chapter_notebooks_in(tree).values())  # graded as well
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for found in sorted([*tree.python_files(), *notebooks], key=lambda f: f.name_bytes):
            info = zipfile.ZipInfo(found.rel, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, found.data)
    data = buffer.getvalue()
    return Archive(hashlib.sha256(data).hexdigest(), data)


def versions() -> dict[str, str]:
    """What must be equal on the instructor's machine and every Dask worker."""
    return {"llmgrade": __version__, "torch": installed_torch_version()}


def worker_identity() -> str:
    """Which machine and Dask worker graded a task (recorded in the gradebook)."""
    try:
        from distributed import get_worker

        return f"{socket.gethostname()} {get_worker().address}"
    except (ImportError, ValueError):
        return f"{socket.gethostname()} pid {os.getpid()}"


def grade_archive(archive: Archive, items: Sequence[str], time_limit_s: float,
                  expected: dict[str, str], threads: int | None = None,
                  allow_unisolated: bool = False, limits: Limits | None = None,
                  options: GradeOptions = GradeOptions()) -> dict[str, Any]:
    """Runs on a Dask worker: verify, unpack into a private temporary folder, grade, return plain data."""
    from grader.classroom.safezip import extract_zip
    from grader.runner.run import grade_submission
    from grader.sandbox.policy import probe

    if hashlib.sha256(archive.data).hexdigest() != archive.digest:
        raise ArchiveError("cluster.bad_archive", digest=archive.digest[:12], host=socket.gethostname())
    found = versions()
    if found != expected:
        raise VersionMismatch("cluster.version_mismatch", host=socket.gethostname(),
                              worker=", ".join(f"{k} {v}" for k, v in sorted(found.items())),
                              instructor=", ".join(f"{k} {v}" for k, v in sorted(expected.items())))
    isolation = probe()
    if not isolation.sandboxed and not allow_unisolated:
        raise NoSandbox("cluster.no_sandbox", host=socket.gethostname(), reason=isolation.reason)
    with tempfile.TemporaryDirectory(prefix="llmgrade-cluster-") as tmp:
        zip_path = Path(tmp) / "submission.zip"
        zip_path.write_bytes(archive.data)
        folder = extract_zip(zip_path, Path(tmp) / "submission")
        run = grade_submission(folder, items, time_limit_s=time_limit_s, threads=threads, limits=limits,
                               **options.kwargs())
    data = run.to_dict()
    data["graded_by"] = worker_identity()
    return data


def is_cluster_loss(exc: BaseException) -> bool:
    """True for failures of the cluster itself (no result to record), not of one submission."""
    import concurrent.futures

    if isinstance(exc, (ClusterRefusal, concurrent.futures.CancelledError, ConnectionError, TimeoutError)):
        return True
    try:
        from distributed.comm.core import CommClosedError
    except ImportError:  # pragma: no cover - distributed is installed whenever a cluster is used
        return False
    return isinstance(exc, CommClosedError)


def is_killed_worker(exc: BaseException) -> bool:
    try:
        from distributed import KilledWorker
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, KilledWorker)


class DaskPool:
    """A concurrent.futures executor on a Dask cluster, and what it needs to be closed."""

    def __init__(self, address: str, allowed_failures: int = DEFAULT_ALLOWED_FAILURES,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            import dask
            # Dask's client is not fully typed: use it through Any rather than scatter ignores.
            dist: Any = importlib.import_module("distributed")
        except ImportError as exc:
            raise SetupError("cluster.not_installed") from exc
        self.address = address
        self._cluster: Any = None
        # Dask's nannies write their pre-spawn variables (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, ...) into
        # the environment of the process that runs them, which for local:N is the instructor's own
        # process. Every grading process gets its thread count from us (``threads`` below), so none
        # are written: the instructor's process and what it starts later keep their own settings.
        quiet_nannies = {f"distributed.nanny.pre-spawn-environ.{name}": None
                         for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures, **quiet_nannies}):
            if address.startswith(LOCAL_PREFIX):
                count = address[len(LOCAL_PREFIX):]
                if not count.isdigit() or int(count) < 1:
                    raise SetupError("cluster.bad_local", address=address)
                self._cluster = dist.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self.client: Any = dist.Client(self._cluster)
            else:
                try:
                    self.client = dist.Client(address, timeout=connect_timeout_s)
                except (OSError, TimeoutError) as exc:
                    raise SetupError("cluster.cannot_connect", address=address, reason=exc) from exc
        self.executor: Executor = self.client.get_executor(pure=False)
        # Torch threads per grading process: a local cluster shares this machine's cores.
        self.threads = (max(1, (os.cpu_count() or 1) // int(address[len(LOCAL_PREFIX):]))
                        if self._cluster is not None else None)

    def submit(self, archive: Archive, items: Sequence[str], time_limit_s: float,
               allow_unisolated: bool = False, limits: Limits | None = None,
               options: GradeOptions = GradeOptions()) -> Any:
        return self.executor.submit(grade_archive, archive, list(items), time_limit_s, versions(), self.threads,
                                    allow_unisolated, limits, options)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def open_pool(address: str) -> DaskPool:
    return DaskPool(address)

