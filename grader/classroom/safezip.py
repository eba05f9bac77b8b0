"""Extracting a student's ``.zip`` safely: no path traversal, no links, no zip bombs.

Every member is checked before anything is written, and the bytes actually written are counted
too (the sizes in a zip's headers can lie).
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from grader.errors import SetupError
from grader.submission_tree import shown

MAX_FILES = 2000
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200.0
_CHUNK = 1 << 16


class UnsafeZip(SetupError):
    """A zip that was refused; ``str()`` is the translated sentence naming the file."""


def _member_path(zip_path: str, name: str) -> PurePosixPath:
    pure = PurePosixPath(name.replace("\\", "/"))
    if (pure.is_absolute() or ".." in pure.parts or name.startswith(("/", "\\"))
            or (pure.parts and ":" in pure.parts[0]) or "\0" in name):
        raise UnsafeZip("zip.traversal", zip=zip_path, member=shown(name))
    return pure


def extract_zip(zip_path: Path, dest: Path, max_files: int = MAX_FILES,
                max_total_bytes: int = MAX_TOTAL_BYTES, max_ratio: float = MAX_RATIO) -> Path:
    """Extract ``zip_path`` into the folder ``dest``; raises ``UnsafeZip`` (nothing trusted) if refused."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except UnicodeDecodeError as exc:  # a name flagged UTF-8 that is not (zipfile cannot read the rest)
        raise UnsafeZip("trees.zip_bad_names", zip=shown(zip_path), reason=exc.reason) from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsafeZip("zip.bad", zip=shown(zip_path), reason=exc) from exc
    with archive:
        _extract(archive, shown(zip_path), dest, max_files, max_total_bytes, max_ratio)
    return dest


def _extract(archive: zipfile.ZipFile, zip_path: str, dest: Path, max_files: int, max_total_bytes: int,
             max_ratio: float) -> None:
    try:
        _extract_checked(archive, zip_path, dest, max_files, max_total_bytes, max_ratio)
    except UnsafeZip:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError,
            NotImplementedError) as exc:  # a member that cannot be written as named, a damaged stream
        raise UnsafeZip("zip.bad", zip=zip_path, reason=exc) from exc


def _extract_checked(archive: zipfile.ZipFile, zip_path: str, dest: Path, max_files: int,
                     max_total_bytes: int, max_ratio: float) -> None:
    members = archive.infolist()
    if len(members) > max_files:
        raise UnsafeZip("zip.too_many_files", zip=zip_path, count=len(members), limit=max_files)
    declared = 0
    for info in members:
        _member_path(zip_path, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeZip("zip.symlink", zip=zip_path, member=shown(info.filename))
        declared += info.file_size
        if info.compress_size and info.file_size / info.compress_size > max_ratio:
            raise UnsafeZip("zip.bomb", zip=zip_path, member=shown(info.filename))
    if declared > max_total_bytes:
        raise UnsafeZip("zip.too_big", zip=zip_path, limit_mb=max_total_bytes // 2**20)
    written = 0
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for info in members:
        target = root.joinpath(*_member_path(zip_path, info.filename).parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_total_bytes:
                        raise UnsafeZip("zip.too_big", zip=zip_path,
                                        limit_mb=max_total_bytes // 2**20)
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError) as exc:
            raise UnsafeZip("zip.bad", zip=zip_path, reason=exc) from exc
