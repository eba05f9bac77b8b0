"""The worker: holds one item's reference view, loads the student's submission, runs recipes.

Each worker is forked from the fork server (:mod:`grader.sandbox.forkserver`) for one item (or,
once per run, only to load the whole submission and report what fails). Time is enforced from the
outside; memory and file size with rlimits set here before any student code runs. It reads
requests from one pipe and answers on another; student ``print`` output goes to a capped file,
never into the protocol. Only plain data goes back (see :mod:`grader.sandbox.protocol`).

Requests: ``{"op": "view", "modules": [[name, source], ...]}`` makes the reference view the package
``reference`` (the only reference code this process ever holds); ``{"op": "load"}`` imports every
chapter module and reports load problems; ``{"op": "load_for", "modules": [...], "failed": [...]}``
imports what one item needs; ``{"op": "run", "recipe": name, "inputs": {...}, "swap": [item ids]}``
runs one recipe.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader.recipes.frames import student_frame

GiB = 1024**3
STACK_DUMP_NAME = "stack.txt"  # next to the output file; read by grader.sandbox.stack_dump
PACKAGE = "submission"
REFERENCE = "reference"
DEVICE_ENV = "LLMGRADE_DEVICE"  # read by the book's get_device() (reference/device.py)
# Installed libraries the fork server may import for every worker when the trusted side asks
# (grader/checking/preload.py: the submission imports them): slow to import, nothing runs at import.
PRELOADABLE = frozenset({"matplotlib.pyplot", "pandas"})


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


class ReferenceUnavailable(Exception):
    """The grader's reference for this name is not in this worker (it grades an item that does not
    build on it): raised by the placeholders a stand-in module holds."""


class Submission:
    """The student's folder, imported as the package ``submission``.

    A grading worker imports only the modules its item needs (the item's own at load, the others
    when a recipe first asks for them); the worker that only loads the submission imports them all
    and reports what failed. A module the submission failed to load is replaced, for importing
    its dependants only, by a stand-in made from this worker's reference view."""

    def __init__(self, root: Path, package_root: Path | None = None) -> None:
        self.root = root.resolve()
        self.modules: dict[str, types.ModuleType] = {}
        self.load_errors: dict[str, dict[str, Any]] = {}
        self.stand_ins: dict[str, list[str]] = {}
        self.failed: set[str] = set()  # modules known (from the loading worker) not to load
        self.time_limit_s: float | None = None
        # A real, importable package (a link to the student's folder), so that child processes
        # started with multiprocessing's "spawn" can import the same code.
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
        earlier worker (already reported): a stand-in replaces them at once."""
        from grader.catalog import ITEMS, MODULES

        self.time_limit_s = module_time_limit_s
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

    def load_for(self, modules: list[str], failed: list[str], module_time_limit_s: float | None = None) -> dict[str, Any]:
        """A grading worker's load: stand-ins for the modules the loading worker saw fail, then
        ``modules`` (the item's own). Returns the problems met, as :meth:`load_all` does."""
        self.time_limit_s = module_time_limit_s
        self.failed = set(failed)
        for name in sorted(self.failed):
            self._stand_in(name)
        for name in modules:
            if name not in self.failed:
                self._load(name, module_time_limit_s)
        return {"modules": self.load_errors, "missing": {}, "stand_ins": self.stand_ins}

    def _stand_in_for_failed(self) -> None:
        """Re-import modules that failed only because an earlier module of the submission failed.

        ``ch04`` does ``from .ch03 import MultiHeadAttention``: a syntax error in ch03.py must cost
        the ch03 items, not every item of ch04. The failed module is replaced, for importing only,
        by a stand-in; its own items stay ungraded (reported once, as ch03's error).
        """
        failed = [name for name, info in self.load_errors.items() if info["kind"] != "missing_file"]
        for name in list(self.load_errors):
            info = self.load_errors[name]
            culprit = Path(str(info.get("file", ""))).stem
            if culprit == name or culprit not in failed or info["kind"] == "missing_file":
                continue
            self._stand_in(culprit)
            sys.modules.pop(f"{PACKAGE}.{name}", None)
            del self.load_errors[name]
            self._load(name, self.time_limit_s)
            if name not in self.load_errors:
                self.stand_ins.setdefault(name, []).append(culprit)

    def _stand_in(self, name: str) -> None:
        """For importing only: a stand-in in place of the student's module (whose items stay
        ungraded, reported once)."""
        sys.modules[f"{PACKAGE}.{name}"] = stand_in(name)

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
        """The student's module ``name``, imported on first use (a grading worker imports only
        what its item's recipes ask for)."""
        if name not in self.modules and name not in self.load_errors and name not in self.failed:
            self._load(name, self.time_limit_s)
        if name not in self.modules:
            raise ModuleNotLoaded(name)
        return self.modules[name]

    def loaded(self, name: str) -> types.ModuleType | None:
        """The student's module ``name`` if it is already imported (never imports it)."""
        return self.modules.get(name)


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


def install_view(modules: list[list[str]] | list[tuple[str, str]]) -> None:
    """Make this worker's reference view (:mod:`grader.sandbox.views`, sent by the trusted side)
    the package ``reference``: a fresh module per reference module, executed from the view's
    source. Nothing else of the reference exists in this process."""
    package = sys.modules.get(REFERENCE)
    if package is None or getattr(package, "__path__", None) != []:
        package = types.ModuleType(REFERENCE, "The grader's reference, as far as this worker's item builds on it.")
        package.__path__ = []
        package.__package__ = REFERENCE
        sys.modules[REFERENCE] = package
    for name in [n for n in sys.modules if n.startswith(REFERENCE + ".")]:  # a view replaces the last one
        if name not in dict(modules):
            del sys.modules[name]
    made: list[tuple[types.ModuleType, str]] = []
    for name, source in modules:
        if not str(name).startswith(REFERENCE + "."):
            raise ValueError(f"not a reference module: {name!r}")
        short = str(name).split(".", 1)[1]
        existing = sys.modules.get(str(name))
        if existing is not None and getattr(existing, "__view_source__", None) == source:
            setattr(package, short, existing)  # the same code (the fork server's support): kept, caches too
            continue
        module = types.ModuleType(str(name))
        module.__package__ = REFERENCE
        module.__file__ = f"<reference view>/{short}.py"
        sys.modules[str(name)] = module
        setattr(package, short, module)
        made.append((module, str(source)))
    for module, source in made:  # in the view's order: a module imports only earlier ones
        exec(compile(source, str(module.__file__), "exec"), module.__dict__)
        module.__view_source__ = source  # type: ignore[attr-defined]


def stand_in(name: str) -> types.ModuleType:
    """A module standing in for the student's ``name``: the view's reference names, and for each
    name of an item the view does not hold, a placeholder that says so when used."""
    from grader.catalog import ITEMS

    copy = types.ModuleType(f"{PACKAGE}.{name}")
    reference = sys.modules.get(f"{REFERENCE}.{name}")
    if reference is not None:
        copy.__dict__.update({k: v for k, v in vars(reference).items()
                              if k not in ("__name__", "__spec__", "__loader__", "__file__")})
    for item in ITEMS:
        if item.module != name:
            continue
        for symbol in item.names:
            if symbol not in copy.__dict__:
                setattr(copy, symbol, _placeholder(name, symbol, item.id))
    return copy


def _placeholder(module: str, symbol: str, item_id: str) -> type:
    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise ReferenceUnavailable(f"{module}.{symbol} ({item_id}) stands in for a module that could not be "
                                   "loaded, and this check does not use it")

    return type(symbol, (), {"__init__": unavailable, "__call__": unavailable, "__module__": f"{PACKAGE}.{module}"})


class ModuleNotLoaded(Exception):
    pass


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


def serve(read_fd: int, write_fd: int, submission: Submission, device: str) -> None:
    """Answer the trusted side's requests until it closes the pipe or says ``exit``.

    ``view`` installs the reference view (before any student code is imported); ``load`` imports
    every chapter module and reports problems (the loading worker); ``load_for`` imports what one
    item needs; ``run`` runs a recipe; ``ping`` answers once torch is imported."""
    from grader.sandbox import protocol
    from grader.recipes import run_recipe

    while True:
        try:
            request = protocol.receive(read_fd)
        except EOFError:
            return
        op = request.get("op")
        output_start = _output_size()
        try:
            if op == "view":
                install_view(request["modules"])
                value: Any = "ok"
            elif op == "load":
                value = submission.load_all(request.get("module_time_limit_s"), request.get("skip"))
            elif op == "load_for":
                value = submission.load_for(list(request.get("modules", [])), list(request.get("failed", [])),
                                            request.get("module_time_limit_s"))
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
        reply["output_bytes"] = _output_size() - output_start
        try:
            protocol.send(write_fd, reply)
        except protocol.ProtocolError as exc:
            protocol.send(write_fd, {"ok": False, "error": {"kind": "too_large", "type": "ProtocolError",
                                                            "message": str(exc)}})


def _output_size() -> int:
    try:
        return os.fstat(1).st_size
    except OSError:
        return 0


def prepare_server(settings: dict[str, Any]) -> None:
    """The fork server's start: everything every worker needs and nothing of the submission or of
    the reference (neither is reachable from here). No torch operation runs (see forkserver)."""
    os.environ[DEVICE_ENV] = str(settings.get("device", "cpu"))  # the book's get_device() agrees with us
    import torch

    from grader.recipes import load_all
    from grader.recipes.support import configure_determinism
    from grader.sandbox import protocol  # noqa: F401 - imported once here rather than in every worker

    configure_determinism(torch)
    load_all()
    install_view(settings.get("support_view", []))  # no item's code: the tokenizer, get_device
    if settings.get("warm"):
        # What the first optimizer step or meta-device model imports (torch._dynamo: some 800
        # modules, a second and more), and the GPT-2 tokenizer's merge table: once here, not in every
        # worker. Nothing is computed (a forked OpenMP pool would hang the workers).
        importlib.import_module("torch._dynamo")
        tokenizer = sys.modules.get(f"{REFERENCE}.gpt2_tokenizer")
        if tokenizer is not None:
            tokenizer.get_gpt2_tokenizer()
        try:  # what the book's code calls, served from the prepared tiktoken cache
            import tiktoken

            tiktoken.get_encoding("gpt2")
        except Exception:  # noqa: BLE001 - a worker that needs it loads it (and reports a failure) itself
            pass
    for name in settings.get("preload", []):
        if name in PRELOADABLE:  # from the installed packages: the submission is not on sys.path here
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a worker that imports it gets the error itself
                pass


def serve_forked(req_r: int, rep_w: int, out_fd: int, stack_fd: int, settings: dict[str, Any]) -> None:
    """A worker forked from the fork server: its walls, its limits, then :func:`serve`."""
    if settings.get("nest"):
        from grader.sandbox import nest, seccomp

        nest.enter(int(settings["tmp_bytes"]), int(settings["shm_bytes"]), str(settings["home"]),
                   seccomp.build_filter() if settings.get("seccomp") else None,
                   [(str(path), bool(writable)) for path, writable in settings.get("keep", [])])
    else:
        os.setsid()  # its own process group: the trusted side stops the whole group
        home = Path(str(settings["home"]))
        home.mkdir(parents=True, exist_ok=True)
        os.chdir(home)
        os.environ["HOME"] = str(home)
    # Student prints and warnings go to a capped file, never into the protocol pipe.
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    import faulthandler

    # On SIGUSR1 (sent just before a timeout kill), write the Python stack to its own file.
    faulthandler.register(signal.SIGUSR1, file=stack_fd, all_threads=True)
    _apply_limits(int(float(settings.get("memory_gib", 0.0)) * GiB), int(float(settings.get("file_mib", 64.0)) * 1024 * 1024))
    import torch

    torch.set_num_threads(max(1, int(settings.get("threads", 1))))
    device = str(settings.get("device", "cpu"))
    if device.startswith("cuda") and torch.cuda.is_available():
        # No RLIMIT_AS on CUDA (it breaks CUDA initialisation): cap device memory instead.
        torch.cuda.set_per_process_memory_fraction(float(settings.get("cuda_memory_fraction", 0.5)),
                                                   torch.device(device))
    cov = None
    if settings.get("coverage"):  # the project's own tests measure how much of solutions/ the suites exercise
        import coverage

        cov = coverage.Coverage(data_file=str(settings["coverage"]), data_suffix=True,
                                include=[str(Path(str(settings["submission"])).resolve() / "*")])
        cov.start()
    try:
        serve(req_r, rep_w, Submission(Path(str(settings["submission"])), Path(str(settings["package_root"]))),
              device)
    finally:
        if cov is not None:
            cov.stop()
            cov.save()
