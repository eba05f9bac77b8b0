"""The answer-key tripwire in the worker: an audit hook that sees the student's code reach for the
answer key and reports it out of the process at once.

What it watches, while the student's code is on the stack:

- ``import`` of ``reference``, ``solutions``, ``grader`` or ``llms_from_scratch`` (however the name
  was built: ``import``, ``importlib``, ``__import__``);
- ``open`` of a file of those trees (``inspect.getsource`` of a reference object, ``open``,
  ``Path.read_text``), matched by inode, so links and relative paths do not hide it;
- ways into the worker's own objects: ``gc.get_objects``/``get_referrers``/``get_referents`` and
  ``sys._current_frames``, ``sys._getframe`` and traceback/generator frames asked for directly;
- code compiled under the name of a grader or library file (``compile``, ``CodeType``,
  ``code.replace``), which would hide the student's frames from this hook.

Each one is written at once, as one line, to a pipe that only the trusted parent reads
(``grader.sandbox.parent.Worker._answer_key_use``), and then refused (the hook raises, so the
import, read or call does not happen). Nothing it has seen stays in the process to be cleared.

Its state lives only in the closure of the hook: no module global, no object reachable from the
worker's frames refers to it (finding it needs ``gc``, which it refuses). The functions it calls
are C builtins captured when it is installed, so monkeypatching ``sys``, ``os`` or ``str`` does not
change it; it never calls a method of an object the student made. If its pipe was closed or
replaced, it ends the worker with :data:`TAMPER_EXIT`, which the parent counts as a use (fail closed). This is a tripwire, not a wall: code
in the same process can still, with ``ctypes``, rewrite the interpreter's memory
(docs/security.md says what backs it up).
"""

from __future__ import annotations

import _thread
import os
import sys
import sysconfig
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Importing these from the student's code is using the answer key (grader/checking/answer_key.py).
ANSWER_KEY_PACKAGES = ("reference", "solutions", "grader", "llms_from_scratch")
# What any library may read of every loaded module without that being a use of the answer key:
# ``inspect.getmodule`` reads ``__class__`` and ``__file__`` of each module in ``sys.modules`` (torch does so when it
# registers its lazily imported operators, e.g. the first model built on the meta device). A name
# and a path give nothing away (opening the file is watched on its own), and ``__class__`` is what
# ``type(module)`` says without asking the module.
READABLE = ("__class__", "__file__", "__name__")
FIELD = "\x1f"  # between the fields of one reported use: kind, name, file, line
MAX_LINE = 4000  # one write under PIPE_BUF: a line arrives whole or not at all
# The worker's exit status when its report pipe was closed or replaced: the parent counts it as a
# use of the answer key (blinding the tripwire is how one would hide one).
TAMPER_EXIT = 86

_REACH = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"})
_FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
_DISGUISE = frozenset({"compile", "code.__new__"})
# Code objects from bytes, and trace or profile functions (they are handed every frame).
_DIRECT = {"marshal.loads": "disguise", "sys.settrace": "frames", "sys.setprofile": "frames"}
# A process the student's code starts itself would run without this hook (one a library starts on
# its own behalf, as matplotlib does on import, is the library's). multiprocessing's "spawn" raises
# no audit event: docs/security.md.
_SPAWN = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"})
# The stdlib functions that hand the student's code a frame, by file and function: called by the
# student's code, they count like ``sys._getframe``. The others only read frames to say something
# (``traceback.print_exc``, ``logging.exception``): an honest student's own error handling, never a
# use of the key.
_FRAME_GIVERS = frozenset({("inspect.py", "currentframe"), ("inspect.py", "stack"), ("inspect.py", "trace"),
                           ("inspect.py", "getouterframes"), ("inspect.py", "getinnerframes"),
                           ("traceback.py", "walk_tb"), ("traceback.py", "walk_stack"),
                           ("__init__.py", "<lambda>")})  # logging.currentframe


class AnswerKeyRefused(PermissionError):
    """What the hook raises after reporting a use: the import, read or call does not happen."""


def stdlib_roots() -> tuple[str, ...]:
    """The standard library's folder (in a venv, ``platstdlib`` is the venv's own lib folder, which
    holds site-packages: not used)."""
    return tuple(sorted({str(Path(p).resolve()) + os.sep for p in (sysconfig.get_paths()["stdlib"],
                                                                   os.path.dirname(os.__file__))}))


def trusted_roots(grader_root: Path) -> tuple[str, ...]:
    """Where the code that is not the student's lives: the Python install, the venv, the grader."""
    paths = sysconfig.get_paths()
    places = (sys.prefix, sys.base_prefix, sys.exec_prefix, paths["purelib"], paths["platlib"])
    roots = {str(Path(p).resolve()) + os.sep for p in places} | {str(Path(p)) + os.sep for p in places}
    roots |= {str(grader_root / part) + os.sep for part in ("grader", "reference")}
    return tuple(sorted(roots))


def answer_key_files(folders: Iterable[Path], student_roots: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    """``(device, inode)`` of every file under ``folders`` (except the submission's own)."""
    found: set[tuple[int, int]] = set()
    for folder in folders:
        for base, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(base, name)
                if path.startswith(student_roots):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def key_folders(grader_root: Path) -> list[Path]:
    """The answer key's trees as the worker sees them (solutions/ is not mounted in the sandbox)."""
    import importlib.util

    folders = [grader_root / part for part in ("reference", "solutions", "grader") if (grader_root / part).is_dir()]
    try:
        spec = importlib.util.find_spec("llms_from_scratch")  # finds it without running it
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) for p in spec.submodule_search_locations]
    return folders


def install(fd: int, student_roots: tuple[str, ...], trusted: tuple[str, ...], stdlib: tuple[str, ...],
            key_files: frozenset[tuple[int, int]], owned: tuple[str, ...]) -> None:
    """Install the hook; it reports to ``fd`` (the write end of a pipe the parent reads).

    ``owned``: the grader's own code (``grader/``, ``reference/``), the only trusted code that asks on
    its own behalf; library frames between it and the student's are looked through.

    Reference modules get a guard: reading or setting their attributes from the student's code
    (``sys.modules["reference.ch04"].GPTModel``, ``importlib.import_module`` of one already loaded,
    ``from reference.ch04 import ...``) is reported and refused like an import."""
    trusted = (*trusted, "<frozen ")  # the import system's own frames
    getframe = sys._getframe
    exit_now = os._exit
    module_get = types.ModuleType.__getattribute__
    module_set = types.ModuleType.__setattr__
    module_del = types.ModuleType.__delattr__
    exact_type = type
    subclass = issubclass
    length = len
    tuple_of = tuple
    module_type = types.ModuleType
    readable = frozenset(READABLE)
    modules = sys.modules  # the interpreter's own dict, even if ``sys.modules`` is rebound later
    guarded: set[str] = set()
    seen_count = [0]
    write = os.write
    fstat = os.fstat
    stat = os.stat
    get_ident = _thread.get_ident
    startswith = str.startswith
    find = str.find
    split = str.split
    join = str.join
    rsplit = str.rsplit
    sep = os.sep
    frame_givers = _FRAME_GIVERS
    replace = str.replace
    as_str = str.__str__  # an exact copy of a str subclass, without calling its methods
    as_bytes = bytes.__getitem__  # with slice(None): an exact copy of a bytes subclass
    whole = slice(None)
    fsdecode = os.fsdecode
    int_text = int.__repr__
    pipe = fstat(fd)
    pipe_id = (pipe.st_dev, pipe.st_ino)
    packages = frozenset(ANSWER_KEY_PACKAGES)
    bottom = getframe()
    while bottom.f_back is not None:
        bottom = bottom.f_back
    boot = bottom.f_code  # the worker's own ``python -c`` bootstrap (its file is "<string>")
    busy: set[int] = set()  # threads inside the hook (it calls sys._getframe, itself audited)

    def text(value: Any) -> str | None:
        kind = exact_type(value)
        if kind is str:
            return value  # type: ignore[no-any-return]
        if subclass(kind, str):
            return as_str(value)
        if subclass(kind, bytes):
            return fsdecode(as_bytes(value, whole))
        return None

    def is_student(filename: str) -> bool:
        return startswith(filename, student_roots) or not startswith(filename, trusted)

    def is_stdlib(filename: str) -> bool:
        if startswith(filename, "<frozen "):
            return True
        return startswith(filename, stdlib) and find(filename, "-packages" + os.sep) < 0  # not site-/dist-packages

    def student_on_stack(frame: Any) -> Any:
        """The innermost frame of the submission's files, else of any untrusted code, else None."""
        untrusted = None
        while frame is not None:
            code = frame.f_code
            name = code.co_filename
            if startswith(name, student_roots):
                return frame
            if untrusted is None and code is not boot and is_student(name):
                untrusted = frame
            frame = frame.f_back
        return untrusted

    def nearest_owner(frame: Any) -> Any:
        """The first frame of the student's or of the grader's own code: library frames (the stdlib,
        torch, ...) between them are looked through. The student's, or None."""
        while frame is not None:
            code = frame.f_code
            name = code.co_filename
            if startswith(name, student_roots):
                return frame
            if startswith(name, owned):
                return None
            if code is not boot and not startswith(name, trusted):
                return frame
            frame = frame.f_back
        return None

    def nearest_caller(frame: Any, skip_stdlib: bool) -> Any:
        """The frame that asked: the first one (not of the stdlib, with ``skip_stdlib``), if the student's."""
        while frame is not None:
            code = frame.f_code
            name = code.co_filename
            if skip_stdlib and is_stdlib(name):
                frame = frame.f_back
                continue
            return frame if code is not boot and is_student(name) else None
        return None

    def frames_asked(frame: Any) -> Any:
        """The student's frame when the student's code asked for a frame: directly, or through a
        stdlib function that hands frames back (:data:`_FRAME_GIVERS`); None when the frame was read
        by a library, or by a stdlib function that only reports (``traceback.print_exc``)."""
        entry = None
        while frame is not None:
            code = frame.f_code
            name = code.co_filename
            if not is_stdlib(name):
                if code is boot or not is_student(name):
                    return None
                if entry is None:
                    return frame
                return frame if (rsplit(entry.co_filename, sep, 1)[-1], entry.co_name) in frame_givers else None
            entry = code
            frame = frame.f_back
        return None

    def report(kind: str, name: str, frame: Any) -> None:
        lineno = frame.f_lineno
        fields = [kind, name, frame.f_code.co_filename, int_text(lineno) if exact_type(lineno) is int else "0"]
        line = join(FIELD, [replace(replace(f, FIELD, " "), "\n", " ")[:1200] for f in fields]) + "\n"
        data = line.encode("utf-8", "replace")[:MAX_LINE]
        here = fstat(fd)
        if (here.st_dev, here.st_ino) != pipe_id:
            raise OSError("the answer-key pipe was replaced")
        write(fd, data)

    def refuse(kind: str, name: str, frame: Any) -> None:
        try:
            report(kind, name, frame)
        except BaseException:  # noqa: BLE001 - the pipe closed or replaced: end the worker, the parent sees why
            exit_now(TAMPER_EXIT)
        raise AnswerKeyRefused(f"llmgrade: {kind} {name}: the answer key and the grader's objects are "
                               "out of bounds for graded code")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in watched:
            return
        me = get_ident()
        if me in busy:
            return
        busy.add(me)
        try:
            frame = getframe(1)
            if event == "import":
                name = text(args[0]) if args else None
                if name is not None and split(name, ".", 1)[0] in packages:
                    found = student_on_stack(frame)
                    if found is not None:
                        refuse("import", name, found)
            elif event == "open":
                path = text(args[0]) if args else None
                found = nearest_owner(frame) if path is not None else None
                if found is not None and path is not None:
                    try:
                        st = stat(path)
                    except (OSError, ValueError):
                        return
                    if (st.st_dev, st.st_ino) in key_files:
                        refuse("open", path, found)
            elif event in _SPAWN:  # the student's own call: libraries start helpers (matplotlib on import)
                found = nearest_caller(frame, True)
                if found is not None:
                    refuse("spawn", event, found)
            elif event in _REACH:  # the student's own call (a library's bookkeeping is the library's)
                found = nearest_caller(frame, True)
                if found is not None:
                    refuse("reach", event, found)
            elif event == "object.__setattr__":
                attr = text(args[1]) if length(args) > 1 else None
                if attr == "__class__" and exact_type(args[0]) is Guarded:
                    found = nearest_owner(frame)
                    if found is not None:
                        refuse("import", "__class__", found)
            elif event == "sys._getframe":
                found = frames_asked(frame)
                if found is not None:
                    refuse("frames", event, found)
            elif event == "object.__getattr__":
                attr = text(args[1]) if length(args) > 1 else None
                if attr in _FRAME_ATTRS:
                    found = frames_asked(frame)
                    if found is not None:
                        refuse("frames", attr or "", found)
            elif event in _DIRECT:
                found = nearest_caller(frame, False)
                if found is not None:
                    refuse(_DIRECT[event], event, found)
            elif event in _DISGUISE:
                filename = text(args[1]) if length(args) > 1 else None
                if filename is not None and startswith(filename, trusted) and not startswith(filename, student_roots):
                    found = nearest_caller(frame, True)
                    if found is not None:
                        refuse("disguise", filename, found)
            if event in ("import", "exec"):
                guard_new_modules()
        finally:
            busy.discard(me)

    def guard_new_modules() -> None:
        """Give every reference module the guard (run on each import and exec: cheap when nothing
        was added to ``sys.modules``)."""
        if length(modules) == seen_count[0]:
            return
        seen_count[0] = length(modules)
        for name, module in tuple_of(modules.items()):
            if exact_type(name) is str and name not in guarded and (name == "reference" or startswith(name, "reference.")):
                if exact_type(module) is module_type:
                    module_set(module, "__class__", Guarded)
                    guarded.add(name)

    def guard_check(module: Any, attr: Any) -> None:
        found = nearest_owner(getframe(2))
        if found is not None:
            name = text(module_get(module, "__name__")) or "reference"
            wanted = text(attr) or "?"
            # The import system's own look-ups (``__path__``, ``__spec__``) name the module alone.
            refuse("import", name if startswith(wanted, "__") else name + "." + wanted, found)

    class Guarded(types.ModuleType):
        """A reference module: the student's code may not read or change it."""

        def __getattribute__(self, attr: str) -> Any:
            if exact_type(attr) is not str or attr not in readable:
                guard_check(self, attr)
            return module_get(self, attr)

        def __setattr__(self, attr: str, value: Any) -> None:
            guard_check(self, attr)
            module_set(self, attr, value)

        def __delattr__(self, attr: str) -> None:
            guard_check(self, attr)
            module_del(self, attr)

    watched = frozenset({"import", "exec", "open", "sys._getframe", "object.__getattr__", "object.__setattr__",
                         *_DIRECT}) | _REACH | _DISGUISE | _SPAWN
    sys.addaudithook(hook)
    guard_new_modules()
