"""The answer-key routes of issue 19 ("The answer never enters the worker"), each written as a
hostile student would write it: the untouched stubs of ``exercises/`` plus a few lines appended to
each chapter file the route needs. Those lines try, when the module is imported or when a stub is
first called, to reach the grader's own reference implementation by one route, and put its classes
and functions in the chapter's namespace in place of the stubs.

Every step sits in ``try/except``: where a route finds nothing (the redesign, in which ``reference/``
does not exist inside the worker and the in-process tripwire is gone), the stubs simply stay and
the submission scores 0. Any point such a submission scores came from the answer key.

The grader's static scan of the student's files (grader/checking/answer_key.py) would flag a string
that names the key's packages or an attribute such as ``__globals__``; those names are built at run
time here, as a student hiding from the scan would build them, so only what the worker can reach
decides the score.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Shared by every route: the key's package name (built at run time), this chapter's name, and how
# to lay a namespace taken from the key over this chapter's stubs (only names the stubs define).
TAKE = r'''


# ---- appended by a hostile student -------------------------------------------------------------
_RT_KEY = "".join(["ref", "erence"])
_RT_CHAPTER = __name__.rpartition(".")[2]


def _rt_module(chapter):
    """This submission's module for ``chapter`` (``submission.ch04`` next to ``submission.ch03``)."""
    import sys
    base = __name__.rpartition(".")[0]
    return sys.modules.get(base + "." + chapter if base else chapter)


def _rt_take(space, chapter=None):
    """Put the key's public names over the stubs of ``chapter`` (default: this one)."""
    taken = 0
    try:
        own = _rt_module(chapter or _RT_CHAPTER).__dict__
        for key, value in list(dict(space).items()):
            if type(key) is str and not key.startswith("_") and key in own and own[key] is not value:
                own[key] = value
                taken += 1
    except Exception:
        pass
    return taken
'''

# Routes 7 and 8 reach the key only while the grader is running: a stub that is called first tries
# ``_rt_steal`` (which the route defines), then runs whatever the chapter now holds under its name.
LAZY = r'''


def _rt_wrap_stubs():
    """Replace each class and function this chapter defines by one that first tries the route."""
    import functools
    space = globals()
    for name, stub in list(space.items()):
        if name.startswith("_") or getattr(stub, "__module__", None) != __name__:
            continue
        if isinstance(stub, type):
            def new(cls, *args, _name=name, _stub=stub, **kwargs):
                try:
                    _rt_steal(args, kwargs)
                except Exception:
                    pass
                now = space.get(_name)
                if now is not cls and now is not _stub and isinstance(now, type):
                    return now(*args, **kwargs)  # not an instance of cls: its __init__ is not run again
                return object.__new__(cls)
            try:
                space[name] = type(stub)(name, (stub,), {"__new__": new, "__module__": __name__,
                                                         "__qualname__": stub.__qualname__})
            except Exception:
                pass
        elif callable(stub):
            def call(*args, _name=name, _stub=stub, **kwargs):
                try:
                    _rt_steal(args, kwargs)
                except Exception:
                    pass
                now = space.get(_name)
                if callable(now) and getattr(now, "_rt_stub", None) is not _stub:
                    return now(*args, **kwargs)
                return _stub(*args, **kwargs)
            call = functools.wraps(stub)(call)
            call._rt_stub = stub
            space[name] = call


try:
    _rt_wrap_stubs()
except Exception:
    pass
'''

# 1. The reference imported on a stdlib ThreadPoolExecutor thread: only stdlib frames on that stack.
THREAD = r'''


def _rt_thread_route():
    import importlib
    from concurrent.futures import ThreadPoolExecutor
    try:
        with ThreadPoolExecutor(1) as pool:
            module = pool.submit(importlib.import_module, _RT_KEY + "." + _RT_CHAPTER).result()
            _rt_take(pool.submit(vars, module).result())  # vars() on the pool's thread too
    except Exception:
        pass


_rt_thread_route()
'''

# 2. A multiprocessing "spawn" child (no audit hook there) reads reference/<chapter>.py, its path
#    found from a readable __file__; the parent execs the source it returns.
SPAWN = r'''


def _rt_spawn_route():
    import multiprocessing
    import pathlib
    import sys
    try:
        source = None
        for name, module in list(sys.modules.items()):
            if type(name) is not str or name.split(".")[0] not in (_RT_KEY, "gra" + "der"):
                continue
            try:
                start = pathlib.Path(str(module.__file__)).parent
            except Exception:
                continue
            for folder in (start, *start.parents):
                path = folder / (_RT_CHAPTER + ".py") if folder.name == _RT_KEY else \
                    folder / _RT_KEY / (_RT_CHAPTER + ".py")
                try:
                    if not path.is_file():  # a stat: no audit event
                        continue
                    with multiprocessing.get_context("spawn").Pool(1) as pool:  # no hook in the child
                        source = pool.apply_async(pathlib.Path.read_text, (path,)).get(timeout=10)
                    break
                except Exception:
                    continue
            if source:
                break
        if source:
            space = {"__name__": __name__ + "_key", "__package__": __package__}
            exec(compile(source, "<" + _RT_CHAPTER + " from a spawn child>", "exec"), space)
            _rt_take(space)
    except Exception:
        pass


_rt_spawn_route()
'''

# 3. grader.recipes.Impl patched through sys.modules: every recipe's ``impl.module(...)`` becomes
#    the grader's own ReferenceSource.module (no student frame on the stack when it imports).
IMPL = r'''


def _rt_impl_route():
    import sys
    try:
        recipes = sys.modules.get("gra" + "der.recipes")
        if recipes is not None:
            recipes.Impl.module = recipes.ReferenceSource.module
    except Exception:
        pass


_rt_impl_route()
'''

# 4. The tripwire's closure cells, reached through the guarded module's type, rewritten to blind it:
#    its ``refuse`` does nothing and it sees no student code; then the key is imported and read.
CLOSURE = r'''


def _rt_closure_route():
    import importlib
    import sys
    closure, names, contents = "__clo" + "sure__", "co_" + "freevars", "cell_" + "con" + "tents"
    try:
        kinds = {type(module) for name, module in list(sys.modules.items())  # the guard's class
                 if type(name) is str and name.split(".")[0] == _RT_KEY} - {type(sys)}
        todo = []
        for kind in kinds:
            todo += [value for value in vars(kind).values() if callable(value)]
        seen = set()
        while todo:
            fn = todo.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            cells = getattr(fn, closure, None) or ()
            code = getattr(fn, "__co" + "de__", None)
            for name, cell in zip(getattr(code, names, ()), cells):
                try:
                    value = getattr(cell, contents)
                except Exception:
                    continue
                if name == "refuse":
                    setattr(cell, contents, lambda *args, **kwargs: None)
                elif name in ("student_roots", "owned"):
                    setattr(cell, contents, ())
                elif name == "trusted":
                    setattr(cell, contents, ("",))
                elif callable(value):
                    todo.append(value)
        _rt_take(vars(importlib.import_module(_RT_KEY + "." + _RT_CHAPTER)))
    except Exception:
        pass


_rt_closure_route()
'''

# 5. ctypes empties the interpreter's audit-hook list (found by scanning PyInterpreterState for a
#    list of Python functions that take (event, args)); with no hook left, the modules the hook had
#    guarded get their plain class back, and the key is imported and read as any module would be.
CTYPES = r'''


def _rt_ctypes_route():
    import bisect
    import ctypes
    import importlib
    import sys
    import types
    try:
        spans = []
        with open("/proc/self/maps") as maps:
            for line in maps:
                span, perms = line.split()[:2]
                if perms.startswith("r"):
                    spans.append(tuple(int(part, 16) for part in span.split("-")))
        spans.sort()
        starts = [low for low, _ in spans]

        def mapped(address, size):
            at = bisect.bisect_right(starts, address) - 1
            return at >= 0 and address + size <= spans[at][1]

        get = ctypes.pythonapi.PyInterpreterState_Get
        get.restype = ctypes.c_void_p
        base, word = get(), ctypes.sizeof(ctypes.c_void_p)
        for offset in range(0, 1 << 18, word):  # PyInterpreterState and what lies after it
            if not mapped(base + offset, word):
                break
            pointer = ctypes.c_void_p.from_address(base + offset).value
            if not pointer or pointer % word or not mapped(pointer, 4 * word) or \
                    ctypes.c_void_p.from_address(pointer + word).value != id(list) or \
                    ctypes.c_ssize_t.from_address(pointer).value < 1:  # a live list (not a free one)
                continue
            hooks = ctypes.cast(pointer, ctypes.py_object).value
            code = "__co" + "de__"
            if hooks and all(isinstance(h, types.FunctionType) and getattr(h, code).co_argcount == 2
                             for h in hooks):
                hooks.clear()  # the interpreter's audit hooks (event, args): none left
        for name, module in list(sys.modules.items()):  # modules guarded before: plain again
            if type(name) is str and name.split(".")[0] == _RT_KEY and type(module) is not types.ModuleType:
                object.__setattr__(module, "__class__", types.ModuleType)
        _rt_take(vars(importlib.import_module(_RT_KEY + "." + _RT_CHAPTER)))
    except Exception:
        pass


_rt_ctypes_route()
'''

# 6. A SIGPROF handler (CPU-time timer, every 0.2 ms of CPU) walks the interrupted frames and
#    takes the f_globals of any frame running the key's code.
SIGNAL = r'''


def _rt_signal_route():
    import signal
    globals_of, back = "f_" + "globals", "f_" + "back"

    def handler(signum, frame):
        try:
            while frame is not None:
                space = getattr(frame, globals_of)
                name = space.get("__name__")
                if type(name) is str and name.split(".")[0] == _RT_KEY:
                    _rt_take(space, name.rpartition(".")[2])  # into this submission's same chapter
                frame = getattr(frame, back)
        except Exception:
            pass

    try:
        if getattr(signal.getsignal(signal.SIGPROF), "_rt", False):
            return  # an earlier chapter installed it
        handler._rt = True
        signal.signal(signal.SIGPROF, handler)
        signal.setitimer(signal.ITIMER_PROF, 0.0002, 0.0002)
    except Exception:
        pass


_rt_signal_route()
'''

# 7. ModuleType.__getattribute__ called directly on a guarded reference module (once the grader
#    itself has imported it): the guard's own __getattribute__ is never asked.
MODULE_GETATTRIBUTE = r'''


def _rt_steal(args=(), kwargs=None):
    import sys
    import types
    read = getattr(types.ModuleType, "__get" + "attribute__")
    for name, module in list(sys.modules.items()):
        if type(name) is str and name.split(".")[0] == _RT_KEY and "." in name:
            try:
                _rt_take(read(module, "__dict__"), name.rpartition(".")[2])
            except Exception:
                pass


try:
    _rt_steal()
except Exception:
    pass
'''

# 8. The __globals__ of reference objects the recipes hand to student code (a model passed to
#    generate_text_simple, attention modules passed to exercise 3.1, a dependency swapped in for the
#    reference's): each gives a reference module's namespace, and the classes there lead to others.
GLOBALS = r'''


def _rt_steal(args=(), kwargs=None):
    import sys
    import types
    import torch
    globals_of = "__glo" + "bals__"
    found = {}
    todo = list(args) + list((kwargs or {}).values()) + list(globals().values())
    seen = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            if isinstance(obj, torch.nn.Module):
                todo += [sub for sub in obj.modules() if sub is not obj]
            kind = obj if isinstance(obj, type) else type(obj)
            functions = [obj] if isinstance(obj, types.FunctionType) else \
                [v for v in vars(kind).values() if isinstance(v, types.FunctionType)]
            for fn in functions:
                space = getattr(fn, globals_of)
                name = space.get("__name__")
                if type(name) is str and name.split(".")[0] == _RT_KEY and name not in found:
                    found[name] = space
                    todo += [v for v in list(space.values()) if isinstance(v, (type, types.FunctionType))]
        except Exception:
            continue
    for name, space in found.items():
        _rt_take(space, name.rpartition(".")[2])
'''

ROUTES: dict[str, str] = {
    "thread": THREAD,
    "spawn": SPAWN,
    "impl": IMPL,
    "closure": CLOSURE,
    "ctypes": CTYPES,
    "signal": SIGNAL,
    "module_getattribute": MODULE_GETATTRIBUTE + LAZY,
    "globals": GLOBALS + LAZY,
}


def write_submission(folder: Path, route: str, chapters: tuple[str, ...], only: bool = False) -> Path:
    """The untouched stubs of ``exercises/`` in ``folder``, with ``route``'s lines appended to each of
    ``chapters``. ``only``: no other chapter's file (for commands that grade every item, so that
    the chapters left out are reported missing instead of having their checks run)."""
    keep = {"__init__.py", *(f"{chapter}.py" for chapter in chapters)}
    shutil.copytree(ROOT / "exercises", folder,
                    ignore=(lambda _, names: [n for n in names if n not in keep]) if only else None)
    for chapter in chapters:
        path = folder / f"{chapter}.py"
        path.write_text(path.read_text("utf-8") + TAKE + ROUTES[route], "utf-8")
    return folder
