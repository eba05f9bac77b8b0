"""The one reader of submission trees on the trusted side: links, odd names, sizes and special files.

A submission is hostile input, read here as the grading user, so :func:`read_tree` promises:

- **No link leads out.** A symbolic link whose target (resolved) stays inside the submission is read
  as that file or folder; any other (outside, dangling, a loop) is refused, named in the result and
  never opened.
- **Only regular files are opened** (``O_NOFOLLOW | O_NONBLOCK``, checked again with ``fstat``):
  fifos, devices and sockets are refused without being opened, so none can block or feed the grader.
- **Caps**: at most ``max_files`` entries and ``max_bytes`` of graded files (50 MiB and 2,000 by
  default; ``--max-submission-mb``/``--max-submission-files`` or ``LLMGRADE_MAX_SUBMISSION_MB``/
  ``LLMGRADE_MAX_SUBMISSION_FILES``); reading stops at the cap, and the tree says so in one sentence.
- **Any bytes in a name**: names stay as the file system gave them (``os.fsencode`` gives the bytes
  back) and are shown escaped (:func:`shown`: ``b\\xff.py`` for an invalid UTF-8 byte).
- **It never raises** on anything the tree holds; what cannot be read is a refusal with its reason.

What is read: every ``*.py`` file (any depth, skipping ``__pycache__``, hidden folders and virtual
environments, none of which is the student's code) and the ``*.ipynb`` files at the top. The
worker never sees the submission itself: :mod:`grader.notebooks.staging` writes what was read into
a private copy, and the content hash, the Dask packer and the keeper all read it from here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.messages import message_fields, t

DEFAULT_MAX_BYTES = 50 * 2**20
DEFAULT_MAX_FILES = 2000
MAX_MB_ENV = "LLMGRADE_MAX_SUBMISSION_MB"
MAX_FILES_ENV = "LLMGRADE_MAX_SUBMISSION_FILES"
IGNORED_DIRS = ("__pycache__",)
NOTEBOOK_SUFFIX = ".ipynb"


def shown(name: str | bytes | os.PathLike[str]) -> str:
    """A name (or path) as text that can always be printed and stored: bytes that are not UTF-8 are
    escaped (``\\xff``), and so are control characters (a newline cannot forge a line of output)."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


@dataclass(frozen=True)
class Limits:
    """How much of a submission is read: total bytes of graded files and number of entries."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = DEFAULT_MAX_FILES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, max_mb: float | None = None,
                 max_files: int | None = None) -> Limits:
        """The given values, else the environment's, else the defaults (a malformed or non-positive
        value in the environment is ignored: the default applies)."""
        env = os.environ if environ is None else environ
        mb = max_mb if max_mb is not None else _positive(env.get(MAX_MB_ENV), float)
        files = max_files if max_files is not None else _positive(env.get(MAX_FILES_ENV), int)
        return cls(int(mb * 2**20) if mb is not None else DEFAULT_MAX_BYTES,
                   int(files) if files is not None else DEFAULT_MAX_FILES)


def _positive(value: str | None, kind: type[float] | type[int]) -> float | None:
    try:
        number = kind(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


@dataclass(frozen=True)
class TreeFile:
    """A graded file: ``rel`` is its ``/``-separated path in the submission (``os.fsencode`` gives
    its bytes), ``data`` what it held when read."""

    rel: str
    data: bytes

    @property
    def name_bytes(self) -> bytes:
        return os.fsencode(self.rel)

    @property
    def utf8_name(self) -> bool:
        try:
            self.rel.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True


@dataclass(frozen=True)
class Refusal:
    """An entry that was not read: ``reason`` is ``outside`` (a link out of the submission, or
    dangling), ``loop`` (a link to a folder that holds it), ``special`` (fifo, device, socket), ``unreadable`` or ``name`` (a ``.py`` file whose
    name is not UTF-8: Python cannot import it)."""

    name: str  # shown (escaped), relative to the submission
    reason: str

    def message_fields(self) -> dict[str, Any]:
        return message_fields(f"trees.refused.{self.reason}", file=self.name)


@dataclass
class Tree:
    """What :func:`read_tree` found: the graded files, the refused entries, and ``problem`` (a message
    id and its parameters) when the submission is over a cap or cannot be read at all."""

    root: Path
    files: list[TreeFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    problem: tuple[str, dict[str, object]] | None = None
    single: bool = False  # the submission is one notebook file, not a folder
    entries: int = 0
    size: int = 0

    def python_files(self) -> list[TreeFile]:
        return [f for f in self.files if f.rel.endswith(".py")]

    def notebooks(self) -> dict[str, TreeFile]:
        """``{stem: file}`` of the notebooks at the top (a one-notebook submission: that one)."""
        return {f.rel[:-len(NOTEBOOK_SUFFIX)]: f for f in self.files
                if "/" not in f.rel and f.rel.lower().endswith(NOTEBOOK_SUFFIX)}

    def problem_text(self) -> str:
        return t(self.problem[0], **self.problem[1]) if self.problem is not None else ""


def read_tree(root: Path, limits: Limits | None = None) -> Tree:
    """Read the submission ``root`` (a folder, or one ``.ipynb`` file) as hostile input; never raises
    for what the tree holds (see the module's docstring)."""
    limits = limits or Limits.from_env()
    tree = Tree(root)
    try:
        info = os.lstat(root)
    except OSError:
        tree.problem = ("trees.missing", {"path": shown(root)})
        return tree
    if stat.S_ISLNK(info.st_mode):  # the submission itself: resolved once, by the one who named it
        try:
            info = os.stat(root)
        except OSError:
            tree.problem = ("trees.missing", {"path": shown(root)})
            return tree
    if stat.S_ISREG(info.st_mode) and root.suffix.lower() == NOTEBOOK_SUFFIX:
        tree.single = True
        _read_file(tree, limits, os.path.realpath(root), root.name, root.name)
        return tree
    if not stat.S_ISDIR(info.st_mode):
        tree.problem = ("trees.missing", {"path": shown(root)})
        return tree
    real_root = os.path.realpath(root)
    _walk(tree, limits, real_root, real_root, "", {_key(info)})
    tree.files.sort(key=lambda f: f.name_bytes)
    return tree


def _key(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _inside(real_root: str, target: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def _walk(tree: Tree, limits: Limits, real_root: str, folder: str, prefix: str,
          seen: set[tuple[int, int]]) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: os.fsencode(e.name))
    except OSError:
        tree.refused.append(Refusal(shown(prefix.rstrip("/") or "."), "unreadable"))
        return
    for entry in entries:
        if tree.problem is not None:
            return
        rel = prefix + entry.name
        tree.entries += 1
        if tree.entries > limits.max_files:
            tree.problem = ("trees.too_many_files", {"path": shown(tree.root), "limit": limits.max_files})
            return
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            tree.refused.append(Refusal(shown(rel), "unreadable"))
            continue
        path = entry.path
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(path)
            try:
                info = os.stat(target, follow_symlinks=False)
            except OSError:
                tree.refused.append(Refusal(shown(rel), "outside"))  # dangling, or a link loop
                continue
            if not _inside(real_root, target) or stat.S_ISLNK(info.st_mode):
                tree.refused.append(Refusal(shown(rel), "outside"))
                continue
            path = target
        if stat.S_ISDIR(info.st_mode):
            if entry.name.startswith(".") or entry.name in IGNORED_DIRS:
                continue  # not the student's code
            if _key(info) in seen:  # a link to a folder that holds it
                tree.refused.append(Refusal(shown(rel), "loop"))
                continue
            if os.path.exists(os.path.join(path, "pyvenv.cfg")):
                continue  # a virtual environment inside the workspace
            _walk(tree, limits, real_root, path, rel + "/", seen | {_key(info)})
        elif stat.S_ISREG(info.st_mode):
            wanted = entry.name.endswith(".py") or (not prefix and entry.name.lower().endswith(NOTEBOOK_SUFFIX))
            if wanted:
                _read_file(tree, limits, path, rel, entry.name)
        else:
            tree.refused.append(Refusal(shown(rel), "special"))


def _read_file(tree: Tree, limits: Limits, path: str, rel: str, name: str) -> None:
    if name.endswith(".py") and not TreeFile(rel, b"").utf8_name:
        tree.refused.append(Refusal(shown(rel), "name"))
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        tree.refused.append(Refusal(shown(rel), "unreadable"))
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for something else since it was listed
            tree.refused.append(Refusal(shown(rel), "special"))
            return
        room = limits.max_bytes - tree.size
        chunks: list[bytes] = []
        read = 0
        while read <= room:
            chunk = os.read(fd, min(1 << 20, room + 1 - read))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
    except OSError:
        tree.refused.append(Refusal(shown(rel), "unreadable"))
        return
    finally:
        os.close(fd)
    tree.size += read
    if tree.size > limits.max_bytes:
        tree.problem = ("trees.too_big", {"path": shown(tree.root), "limit_mb": _mb(limits.max_bytes),
                                          "file": shown(rel)})
        return
    tree.files.append(TreeFile(rel, b"".join(chunks)))


def _mb(size: int) -> str:
    return f"{size / 2**20:g}"
