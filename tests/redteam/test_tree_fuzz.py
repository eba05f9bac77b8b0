"""Random hostile trees against the tree reader (grader/submission_tree.py), seeded and repeatable.

Each tree mixes what a hostile student can put in a folder: names with invalid UTF-8, newlines,
control characters and dots; links to files and folders inside, to the folder that holds them, to a
secret outside, to nothing, to themselves; fifos; deep folders; files around the caps. Whatever the
tree, the reader must keep every promise of its docstring:

- it returns (never raises, never blocks on a fifo);
- every file it returns holds bytes written inside the submission, never the secret outside;
- every name it returns or refuses is printable (no newline can forge a line of output);
- the caps hold: no more entries or bytes than allowed, or the tree says it stopped.

(No property-testing library: a seeded generator keeps the suite's dependencies as they are, and a
failing seed is printed so that it can be replayed.)
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from grader.submission_tree import Limits, read_tree

SECRET = b"SECRET-OUTSIDE-THE-SUBMISSION-5e1b"
NAMES = [b"ch03.py", b"ch04.py", b"a.py", b"b.txt", b"ch03.ipynb", b"x.py", b"\xff\xfe.py", b"bad\nline.py",
         b"tab\there.py", b"\x1b[31mred.py", b".hidden", b"__pycache__", b"venv", b"sub", b"dir",
         b"\xe4\xb8\xad\xe6\x96\x87.py", b"spaces in name.py", b"-dash.py", b"UPPER.PY", b"x" * 200 + b".py"]


def _build(rng: random.Random, root: bytes, outside: bytes, depth: int, written: set[bytes]) -> None:
    for _ in range(rng.randint(0, 7)):
        name = rng.choice(NAMES)
        path = os.path.join(root, name)
        if os.path.lexists(path):
            continue
        kind = rng.choices(["file", "dir", "link", "fifo"], [6, 2 if depth < 3 else 0, 3, 1])[0]
        try:
            if kind == "file":
                data = rng.randbytes(rng.choice([0, 10, 300, 5000])) + b"\n# inside\n"
                with open(path, "wb") as fh:
                    fh.write(data)
                written.add(data)
            elif kind == "dir":
                os.mkdir(path)
                if rng.random() < 0.3:
                    with open(os.path.join(path, b"pyvenv.cfg"), "wb") as fh:
                        fh.write(b"home = /usr\n")
                _build(rng, path, outside, depth + 1, written)
            elif kind == "link":
                target = rng.choice([
                    os.path.join(outside, b"secret.py"), outside, b"/etc/passwd", b"/dev/zero",
                    b"../" * (depth + 1) + b"outside/secret.py", b".", b"..", name, b"nowhere.py",
                    os.path.join(root, rng.choice(NAMES)), b"/proc/self/environ"])
                os.symlink(target, path)
            else:
                os.mkfifo(path)
        except OSError:
            continue  # a name the file system refuses (too long): not a tree anyone can submit


def _timeout(_signum: int, _frame: object) -> None:
    raise TimeoutError("the tree reader blocked")


@pytest.mark.parametrize("seed", range(8))
def test_random_hostile_trees_keep_every_promise(tmp_path: Path, seed: int) -> None:
    for case in range(40):
        rng = random.Random(seed * 1000 + case)
        base = os.fsencode(tmp_path / f"case{case}")
        outside = os.path.join(base, b"outside")
        root = os.path.join(base, b"submission")
        os.makedirs(outside)
        os.makedirs(root)
        with open(os.path.join(outside, b"secret.py"), "wb") as fh:
            fh.write(SECRET)
        written: set[bytes] = set()
        _build(rng, root, outside, 0, written)
        limits = Limits(max_bytes=rng.choice([200, 6000, 50 * 2**20]), max_files=rng.choice([3, 20, 2000]))

        previous = signal.signal(signal.SIGALRM, _timeout)
        signal.alarm(20)
        try:
            tree = read_tree(Path(os.fsdecode(root)), limits)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

        replay = f"seed {seed}, case {case}"
        for found in tree.files:
            assert SECRET not in found.data, replay
            assert found.data in written, replay  # bytes written inside, as written
            assert found.rel.endswith(".py") or found.rel.lower().endswith(".ipynb"), replay
        for name in [r.name for r in tree.refused]:
            assert name.isprintable(), (replay, name)
        assert tree.entries <= limits.max_files + 1, replay  # the entry that crossed the cap stops it
        if tree.problem is None:
            assert tree.size <= limits.max_bytes and sum(len(f.data) for f in tree.files) == tree.size, replay
        else:
            assert tree.problem[0] in ("trees.too_many_files", "trees.too_big"), replay

