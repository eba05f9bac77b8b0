"""The worker process: loads a student's submission and runs recipes against it.

It is started by :mod:`grader.sandbox.parent` with limits already applied (time is enforced from the
outside; memory and file size with rlimits set here before any student code runs). It reads
requests from one pipe and answers on another; student ``print`` output goes to a capped file,
never into the protocol. Only plain data goes back (see :mod:`grader.sandbox.protocol`).

Requests: ``{"op": "load"}`` imports every chapter module once and reports load problems;
``{"op": "run", "recipe": name, "inputs": {...}, "swap": [item ids]}`` runs one recipe.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GiB = 1024**3
STACK_DUMP_NAME = "stack.txt"  # next to the output file; read by grader.sandbox.stack_dump
PACKAGE = "submission"


class ImportTimeout(BaseException):
    """Raised inside a module import that runs too long (not an ``Exception``: a student's
    ``except Exception`` around a loop must not swallow it)."""


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Interrupt the code inside after ``seconds`` with :class:`ImportTimeout`, raised where it is
    stuck (so its traceback names the student's file and line). Python-level loops are interrupted
    at once; a single long C call only when it returns (the parent's limit covers that)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise ImportTimeout(f"{seconds:.0f}")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _apply_limits(memory_bytes: int, file_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    if memory_bytes > 0:  # never above what the trusted parent itself may use
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            memory_bytes = min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if file_bytes > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Submission:
    """The student's folder, imported as the package ``submission``."""

    def __init__(self, root: Path, package_root: Path | None = None) -> None:
        self.root = root.resolve()
        self.modules: dict[str, types.ModuleType] = {}
        self.load_errors: dict[str, dict[str, Any]] = {}
        self.stand_ins: dict[str, list[str]] = {}
        # A real, importable package (a link to the student's folder), so that child processes
        # started with multiprocessing's "spawn" (DDP in appendix A) can import the same code.
        # The parent names a folder it removes (or the sandbox's own tmpfs): nothing is left behind.
        if package_root is None:
            package_root = Path(tempfile.mkdtemp(prefix="llmgrade-pkg-"))
        link = package_root / PACKAGE
        if not link.is_symlink():  # the parent made it (read-only in the sandbox)
            package_root.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self.root, target_is_directory=True)
        sys.path.insert(0, str(package_root))
        # A chapter imported by its plain name (``from ch03 import ...``, as in a script or a
        # notebook) is the same module object as ``submission.ch03``, so that a dependency swapped
        # for the reference's is swapped wherever the student's code uses it. Other files of the
        # student's (``import utils``) resolve from the folder itself.
        from grader.catalog import MODULES

        sys.meta_path.insert(0, _PlainChapterNames(frozenset(MODULES)))
        sys.path.insert(1, str(self.root))
        importlib.invalidate_caches()

    def load_all(self, module_time_limit_s: float | None = None, skip: list[str] | None = None) -> dict[str, Any]:
        """Import every chapter module; report failed modules and catalog names that are missing.

        Each import may take ``module_time_limit_s``; one that runs longer is stopped where it is
        stuck and reported with that file and line. ``skip``: modules whose import timed out in an
        earlier worker (already reported): the reference stands in for them at once."""
        from grader.catalog import ITEMS, MODULES

        for name in MODULES:
            if skip and name in skip:
                self._stand_in(name)
                continue
            self._load(name, module_time_limit_s)
        self._stand_in_for_failed()
        missing: dict[str, list[str]] = {}
        for item in ITEMS:
            module = self.modules.get(item.module)
            if module is None:
                continue
            absent = [symbol for symbol in item.symbols if not hasattr(module, symbol)]
            if absent:
                missing[item.id] = absent
        return {"modules": self.load_errors, "missing": missing, "stand_ins": self.stand_ins}

    def _stand_in_for_failed(self) -> None:
        """Re-import modules that failed only because an earlier module of the submission failed.

        ``ch04`` does ``from .ch03 import MultiHeadAttention``: a syntax error in ch03.py must cost
        the ch03 items, not every item of ch04. The failed module is replaced, for importing only,
        by the reference's; its own items stay ungraded (reported once, as ch03's error).
        """
        failed = [name for name, info in self.load_errors.items() if info["kind"] != "missing_file"]
        for name in list(self.load_errors):
            info = self.load_errors[name]
            culprit = Path(str(info.get("file", ""))).stem
            if culprit == name or culprit not in failed or info["kind"] == "missing_file":
                continue
            sys.modules[f"{PACKAGE}.{culprit}"] = _reference_copy(culprit)
            sys.modules.pop(f"{PACKAGE}.{name}", None)
            del self.load_errors[name]
            self._load(name)
            if name not in self.load_errors:
                self.stand_ins.setdefault(name, []).append(culprit)

    def _stand_in(self, name: str) -> None:
        """For importing only: the reference's module in place of the student's (whose items stay
        ungraded, reported once)."""
        try:
            sys.modules[f"{PACKAGE}.{name}"] = _reference_copy(name)
        except ImportError:
            sys.modules.pop(f"{PACKAGE}.{name}", None)

    def _load(self, name: str, time_limit_s: float | None = None) -> None:
        path = self.root / f"{name}.py"
        if not path.is_file():
            self.load_errors[name] = {"kind": "missing_file", "file": str(path), "message": ""}
            return
        try:
            with _alarm(time_limit_s):
                self.modules[name] = importlib.import_module(f"{PACKAGE}.{name}")
        except ImportTimeout as exc:
            frame = student_frame(exc, self.root)
            self.load_errors[name] = {
                "kind": "import_error", "timeout_s": float(time_limit_s or 0), "file": frame.get("file", str(path)),
                "line": frame.get("line"), "source_line": frame.get("source_line", ""),
                "message": f"ImportTimeout: {exc}"}
            self._stand_in(name)  # a later ``from .ch03 import ...`` must not hang all over again
        except SyntaxError as exc:
            self.load_errors[name] = {
                "kind": "syntax_error", "file": exc.filename or str(path), "line": exc.lineno,
                "source_line": (exc.text or "").strip(), "message": f"SyntaxError: {exc.msg}"}
        except BaseException as exc:  # noqa: BLE001 - anything the student's import raises
            frame = student_frame(exc, self.root)
            self.load_errors[name] = {
                "kind": "import_error", "file": frame.get("file", str(path)),
                "line": frame.get("line"), "source_line": frame.get("source_line", ""),
                "message": f"{type(exc).__name__}: {exc}"}

    def module(self, name: str) -> types.ModuleType:
        if name not in self.modules:
            raise ModuleNotLoaded(name)
        return self.modules[name]


class _PlainChapterNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import ch03`` gives ``submission.ch03`` itself (imported first if it is not yet)."""

    def __init__(self, chapters: frozenset[str]) -> None:
        self.chapters = chapters

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.chapters:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        return importlib.import_module(f"{PACKAGE}.{spec.name}")

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module was executed once, as part of the package."""


def _reference_copy(name: str) -> types.ModuleType:
    """A stand-in: a new module holding the reference module's names. The reference module itself
    is guarded against the student's code (grader/sandbox/key_watch.py); what a failed module's
    dependants import from it is theirs to use (that module's own items score 0)."""
    reference = importlib.import_module(f"reference.{name}")
    copy = types.ModuleType(f"{PACKAGE}.{name}", reference.__doc__)
    copy.__dict__.update({k: v for k, v in vars(reference).items() if k not in ("__name__", "__spec__", "__loader__")})
    return copy


class ModuleNotLoaded(Exception):
    pass


def student_frame(exc: BaseException, root: Path) -> dict[str, Any]:
    """The innermost traceback frame that lies in the student's folder."""
    found: dict[str, Any] = {}
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            inside = Path(frame.filename).resolve().is_relative_to(root)
        except (OSError, ValueError):
            inside = False
        if inside:
            found = {"file": frame.filename, "line": frame.lineno,
                     "source_line": (frame.line or "").strip(), "function": frame.name}
    if not found and isinstance(exc, SyntaxError) and exc.filename:
        found = {"file": exc.filename, "line": exc.lineno, "source_line": (exc.text or "").strip()}
    return found


def describe_exception(exc: BaseException, root: Path) -> dict[str, Any]:
    kind = "exception"
    if isinstance(exc, NotImplementedError):
        kind = "not_implemented"
    elif isinstance(exc, MemoryError) or "can't allocate memory" in str(exc) \
            or "DefaultCPUAllocator" in str(exc):
        kind = "memory"
    elif isinstance(exc, ModuleNotLoaded):
        kind = "module_not_loaded"
    message = str(exc)
    if len(message) > 2000:
        message = message[:2000] + " ..."
    return {"kind": kind, "type": type(exc).__name__, "message": message, **student_frame(exc, root)}


def serve(read_fd: int, write_fd: int, submission: Submission, output_path: Path, device: str) -> None:
    from grader.sandbox import protocol
    from grader.recipes import run_recipe

    while True:
        try:
            request = protocol.receive(read_fd)
        except EOFError:
            return
        op = request.get("op")
        output_start = output_path.stat().st_size if output_path.exists() else 0
        try:
            if op == "load":
                value: Any = submission.load_all(request.get("module_time_limit_s"), request.get("skip"))
            elif op == "run":
                value = run_recipe(request["recipe"], submission, request.get("swap", []),
                                   request.get("inputs", {}), device)
            elif op == "ping":
                value = "pong"
            elif op == "exit":
                return
            else:
                raise ValueError(f"unknown op {op!r}")
            reply: dict[str, Any] = {"ok": True, "value": protocol.to_plain(value)}
        except SystemExit as exc:
            reply = {"ok": False, "error": {"kind": "exit", "type": "SystemExit",
                                            "message": str(exc.code), **student_frame(exc, submission.root)}}
        except BaseException as exc:  # noqa: BLE001 - report anything student code raises
            reply = {"ok": False, "error": describe_exception(exc, submission.root)}
        reply["output_bytes"] = (output_path.stat().st_size if output_path.exists() else 0) - output_start
        try:
            protocol.send(write_fd, reply)
        except protocol.ProtocolError as exc:
            protocol.send(write_fd, {"ok": False, "error": {"kind": "too_large", "type": "ProtocolError",
                                                            "message": str(exc)}})


def _watch_answer_key(fd: int, submission: Path, package_root: Path | None) -> None:
    """Install the tripwire (:mod:`grader.sandbox.key_watch`); nothing here keeps a reference to it."""
    from grader.sandbox import key_watch

    grader_root = Path(key_watch.__file__).resolve().parents[2]
    student = [str(submission.resolve()) + os.sep]
    if package_root is not None:
        student.append(str(package_root / PACKAGE) + os.sep)
    roots = tuple(student)
    key_watch.install(fd, roots, key_watch.trusted_roots(grader_root), key_watch.stdlib_roots(),
                      key_watch.answer_key_files(key_watch.key_folders(grader_root), roots),
                      tuple(str(grader_root / part) + os.sep for part in ("grader", "reference")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.sandbox.child")
    parser.add_argument("--read-fd", type=int, required=True)
    parser.add_argument("--write-fd", type=int, required=True)
    parser.add_argument("--key-fd", type=int, default=-1, help="where the answer-key tripwire reports")
    parser.add_argument("--submission", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--package-root", type=Path, default=None,
                        help="folder for the importable link to the submission")
    parser.add_argument("--memory-gib", type=float, default=0.0)
    parser.add_argument("--device", default="cpu", help="the grading device, resolved by the trusted side")
    parser.add_argument("--file-mib", type=float, default=64.0)
    parser.add_argument("--coverage", default="", help="measure coverage of the submission into this file")
    parser.add_argument("--cuda-memory-fraction", type=float, default=0.5,
                        help="share of the GPU's memory the student's code may allocate")
    args = parser.parse_args(argv)

    # Student prints and warnings go to a capped file, never into the protocol pipe.
    out = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdin.close()
    # On SIGUSR1 (sent just before a timeout kill), write the Python stack to its own file.
    import faulthandler
    import signal

    stack = os.open(args.output.with_name(STACK_DUMP_NAME), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    faulthandler.register(signal.SIGUSR1, file=stack, all_threads=True)
    _apply_limits(int(args.memory_gib * GiB), int(args.file_mib * 1024 * 1024))

    import torch

    from grader.recipes.support import configure_determinism

    configure_determinism(torch)
    from reference.device import ENV_VAR

    os.environ[ENV_VAR] = args.device  # the book's own get_device() (reference stand-ins) agrees with us
    if args.device.startswith("cuda") and torch.cuda.is_available():
        # No RLIMIT_AS on CUDA (it breaks CUDA initialisation): cap device memory instead.
        torch.cuda.set_per_process_memory_fraction(args.cuda_memory_fraction, torch.device(args.device))
    cov = None
    if args.coverage:  # the project's own tests measure how much of solutions/ the suites exercise
        import coverage

        cov = coverage.Coverage(data_file=args.coverage, data_suffix=True,
                                include=[str(args.submission.resolve() / "*")])
        cov.start()
    if args.key_fd >= 0:
        _watch_answer_key(args.key_fd, args.submission, args.package_root)  # before any student code runs
    try:
        serve(args.read_fd, args.write_fd, Submission(args.submission, args.package_root), args.output,
              args.device)
    finally:
        if cov is not None:
            cov.stop()
            cov.save()


if __name__ == "__main__":
    main()
