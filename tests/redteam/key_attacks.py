"""A hostile student who wants the answer key without being seen: each graded ``forward`` below first
tries one way to blind the worker's tripwire (grader/sandbox/key_watch.py) or to reach the key
through the worker's own objects, then takes the reference's code if it got it. Its own code is
wrong on purpose (``+ 1.0``), so any point it scores came from the key.

Module names and the names that reach other code's objects (``__closure__``, ``f_back`` ...) are
built at run time, so the trusted side's static scan cannot see them: only the tripwire stands
between these and the key.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

COMMON = r'''


def _key(module):
    return "".join(["ref", "erence."]) + module


def _take_key(module, cls, self, x, own):
    import importlib
    try:
        return getattr(importlib.import_module(_key(module)), cls).forward(self, x)
    except BaseException:  # noqa: BLE001 - refused: fall back on our own (wrong) code
        return own(self, x) + 1.0


def _attack(cls, blind, module):
    own = cls.forward

    def forward(self, x):
        try:
            got = blind()
        except BaseException:  # noqa: BLE001 - a refused attempt: carry on regardless
            got = None
        if got is not None:
            return got.forward(self, x)
        return _take_key(module, cls.__name__, self, x, own)

    cls.forward = forward
'''

BLINDER = r'''

def _blind_the_pipe():
    """Point every pipe the worker holds, except its request and reply pipes, at /dev/null."""
    import os
    import stat
    args = open("/proc/self/cmdline", "rb").read().split(b"\0")
    keep = {int(args[i + 1]) for i, arg in enumerate(args[:-1]) if arg in (b"--read-fd", b"--write-fd")}
    null = os.open(os.devnull, os.O_WRONLY)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2 or fd in keep or fd == null:
            continue
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.dup2(null, fd)
        except OSError:
            pass
    return None
'''

CH03 = COMMON + r'''

def _blind_with_gc():
    """Find the hook among all objects and blank its closure (what it watches, where it writes)."""
    import gc
    for obj in getattr(gc, "get_" + "objects")():
        code = getattr(obj, "__code__", None)
        if code is not None and code.co_filename.endswith("key_watch.py"):
            for cell in getattr(obj, "__clo" + "sure__") or ():
                try:
                    setattr(cell, "cell_" + "contents", frozenset())
                except Exception:
                    pass
    return None


def _blind_by_patching():
    """Monkeypatch what a hook would call (sys and os helpers, and the builtins type, issubclass, len
    and list), clear any list of uses in any module's globals, and hand the import a name whose
    string methods lie or raise."""
    import os
    import sys
    frames = "_get" + "frame"
    saved = (getattr(sys, frames), os.write, os.fstat, os.stat)
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            for attr in ("uses", "prefixes", "seen"):
                try:
                    found = getattr(value, attr, None)
                    if isinstance(found, list):
                        found.clear()
                except Exception:
                    pass

    class Liar(str):
        def split(self, *args, **kwargs):
            return ["numpy"]

        def startswith(self, *args, **kwargs):
            raise RuntimeError("no")

        def __str__(self):
            return "numpy"

    import builtins
    real = (builtins.type, builtins.issubclass, builtins.len, builtins.list)
    real_len = real[2]

    def lying_type(*args):  # a hook that asks type() what a name is hears "int"
        return int if real_len(args) == 1 and args[0].__class__.__name__ == "Liar" else real[0](*args)

    setattr(sys, frames, lambda *args: None)
    os.write = lambda fd, data: real_len(data)
    os.fstat = os.stat = lambda *args, **kwargs: None
    builtins.type, builtins.issubclass = lying_type, lambda *args: False
    builtins.len, builtins.list = (lambda value: 0), (lambda *args: [])
    try:
        module = __import__(Liar(_key("ch03")), fromlist=["SelfAttention_v2"])
        return module.SelfAttention_v2
    finally:
        builtins.type, builtins.issubclass, builtins.len, builtins.list = real
        os.write, os.fstat, os.stat = saved[1:]
        setattr(sys, frames, saved[0])


def _walk_frames():
    """Climb from our frame into the worker's (recipe, serve) and look for the reference's class."""
    import sys
    try:
        frame = getattr(sys, "_get" + "frame")(1)
    except BaseException:
        try:
            raise ValueError
        except ValueError as exc:
            frame = getattr(exc.__traceback__, "tb_" + "frame")
    while frame is not None:
        for scope in (getattr(frame, "f_" + "locals"), getattr(frame, "f_" + "globals")):
            for value in list(scope.values()):
                if getattr(value, "__name__", "") == "CausalAttention" and \
                        getattr(value, "__module__", "").startswith("ref"):
                    return value
        frame = getattr(frame, "f_" + "back")
    return None


_attack(SelfAttention_v1, _blind_with_gc, "ch03")
_attack(SelfAttention_v2, _blind_by_patching, "ch03")
_attack(CausalAttention, _walk_frames, "ch03")
'''

CH04 = COMMON + BLINDER + r'''

def _disguise():
    """Compile the import under the name of a file of the Python install: no student frame shows."""
    import os
    import types
    source = "def peek(name):\n    import importlib\n    return importlib.import_module(name).LayerNorm\n"
    space = {}
    try:
        exec(compile(source, os.__file__, "exec"), space)
    except BaseException:
        code = compile(source, "<student>", "exec").replace(co_filename=os.__file__)
        exec(code, space)
    return space["peek"](_key("ch04"))


def _read_the_file():
    """Read the reference's source through the grader package's path and run it here."""
    import sys
    from pathlib import Path
    package = sys.modules["".join(["gra", "der"])]
    source = (Path(package.__file__).resolve().parents[1] / "".join(["ref", "erence"]) / "ch04.py").read_text()
    space = {"__name__": "stolen"}
    exec(source, space)
    return space["FeedForward"]


def _loaded_by_name():
    """The reference module is already in the worker (the checks swap this item's dependencies):
    take it by name from ``sys.modules``, where no import happens."""
    import sys
    module = sys.modules.get(_key("ch04"))
    return module.TransformerBlock if module is not None else None


def _in_another_process():
    """Run the import in a fresh interpreter, where no audit hook was installed."""
    import subprocess
    import sys
    code = "import importlib, sys; importlib.import_module(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, _key("ch04")], check=True)
    return None


_attack(GELU, _blind_the_pipe, "ch04")
_attack(ExampleDeepNeuralNetwork, _in_another_process, "ch04")
_attack(TransformerBlock, _loaded_by_name, "ch04")
_attack(LayerNorm, _disguise, "ch04")
_attack(FeedForward, _read_the_file, "ch04")
'''


BLIND_AT_IMPORT = BLINDER + r'''


def _blind_then_take():
    """At import time: point the tripwire's pipe at /dev/null, then take the reference's class."""
    import importlib
    _blind_the_pipe()
    try:
        return importlib.import_module("".join(["ref", "erence.ch03"])).SelfAttention_v1
    except BaseException:  # noqa: BLE001
        return None


class _Wrong(SelfAttention_v1):
    def forward(self, x):
        return super().forward(x) + 1.0


SelfAttention_v1 = _blind_then_take() or _Wrong
'''


def write_blind_at_import(folder: Path) -> None:
    """ch03.py blinds the tripwire while it is imported, then takes the key; ch04.py is honest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ch03.py").write_text((ROOT / "solutions" / "ch03.py").read_text("utf-8") + BLIND_AT_IMPORT, "utf-8")
    (folder / "ch04.py").write_text((ROOT / "solutions" / "ch04.py").read_text("utf-8"), "utf-8")


def write_submission(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for module, attack in (("ch03", CH03), ("ch04", CH04)):
        (folder / f"{module}.py").write_text((ROOT / "solutions" / f"{module}.py").read_text("utf-8") + attack,
                                             "utf-8")
