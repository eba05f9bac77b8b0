"""Random hostile trees against the tree reader (grader/submission_tree.py), and random hostile zips
against the zip reader (grader/classroom/safezip.py), seeded and repeatable.

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
import warnings
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



ZIP_NAMES = ["ch03.py", "sub/ch04.py", "../escape.py", "../../escape.py", "/abs.py", "C:\\win.py", "a\\..\\..\\b.py",
             "dir/", "wrapper/ch05.py", "nul\0.py", "中文.py", "bad\nline.py", ".hidden/x.py", "x" * 300 + ".py",
             "sub/../../escape2.py", "./ch06.py"]


def _random_zip(rng: random.Random, path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as archive:
        for _ in range(rng.randint(0, 6)):
            info = zipfile.ZipInfo(rng.choice(ZIP_NAMES))
            kind = rng.random()
            if kind < 0.15:
                info.external_attr = (0o120777 << 16)  # a symbolic link member
                data = rng.choice([b"/etc/passwd", b"../outside", b"ch03.py"])
            elif kind < 0.25:
                data = b"0" * rng.choice([10**5, 10**6])  # compresses a thousand to one: a bomb
            else:
                data = rng.randbytes(rng.choice([0, 50, 4000]))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a duplicate name: hostile on purpose
                    archive.writestr(info, data)
            except (ValueError, OSError):
                continue
    if rng.random() < 0.4:  # damage it: flip bytes anywhere, or cut it short
        raw = bytearray(path.read_bytes())
        if raw and rng.random() < 0.5:
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif raw:
            raw = raw[:rng.randrange(len(raw))]
        path.write_bytes(bytes(raw))


@pytest.mark.parametrize("seed", range(4))
def test_random_hostile_zips_are_extracted_inside_or_refused_in_one_sentence(tmp_path: Path, seed: int) -> None:
    """The zip reader (grader/classroom/safezip.py) under random names, links, bombs and damage: it
    writes only regular files inside its folder, within its cap, or refuses with UnsafeZip (a
    printable sentence), never another exception."""
    from grader.classroom.safezip import UnsafeZip, extract_zip

    for case in range(40):
        rng = random.Random(seed * 1000 + case)
        base = tmp_path / f"case{case}"
        (base / "deep" / "er").mkdir(parents=True)
        archive = base / "student.zip"
        _random_zip(rng, archive)
        dest = base / "deep" / "er" / "out"
        replay = f"seed {seed}, case {case}"
        try:
            extract_zip(archive, dest, max_total_bytes=2 * 10**5)
        except UnsafeZip as refused:
            assert str(refused).isprintable(), (replay, str(refused))
        written = [p for p in base.rglob("*") if p != archive and not p.is_dir()]
        inside = [p for p in written if dest in p.parents]
        assert written == inside, (replay, written)  # nothing outside the folder it was given
        assert all(not p.is_symlink() and p.is_file() for p in inside), replay
        assert sum(p.stat().st_size for p in inside) <= 2 * 10**5, replay
