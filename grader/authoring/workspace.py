"""A student's workspace: create one (``llmgrade init``), find it, and fingerprint its code.

A workspace is a folder that is a Python package: ``__init__.py`` plus one exercise module per
chapter, a ``.llmgrade/workspace.json`` marker and a README for the student.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from grader import __version__, catalog
from grader.errors import SetupError
from grader.messages import DEFAULT_LANG, ENV_VAR, current_lang, normalize_lang, set_lang, t, t_in
from grader.authoring.packages import package_dir
from grader.authoring.stubs import generate
from grader.submission_tree import Limits, Tree, read_tree, shown

__all__ = ["SetupError", "WORKSPACE_VERSION", "MARKER", "module_files", "init_workspace", "write_marker",
           "find_submission", "enclosing_workspace", "workspace_of", "workspace_lang", "use_workspace_lang", "read_marker", "content_hash", "example_item"]

WORKSPACE_VERSION = 1
MARKER = Path(".llmgrade") / "workspace.json"


def module_files() -> list[str]:
    """The exercise module file names, in catalog order: ``ch02.py`` ... ``appendix_e.py``."""
    return [f"{module}.py" for module in catalog.MODULES]


def example_item() -> str:
    """The id a student would check first (shown in the README and in messages)."""
    return catalog.ITEMS[0].id


def init_workspace(target: Path, force: bool = False, exercises_dir: Path | None = None,
                   lang: str | None = None) -> Path:
    """Copy the exercise modules into ``target`` and mark it as a workspace; returns ``target``.

    Refuses (``SetupError``) when any module file is already there, unless ``force``. An existing
    README.md is kept unless ``force``. ``exercises_dir`` defaults to the installed ``exercises``.
    In a language other than English (``lang``, default: the current one) the modules are generated
    from the installed ``solutions`` with translated exercise texts instead of copied.
    """
    lang = lang or current_lang()
    source = exercises_dir or package_dir("exercises")
    names = ["__init__.py", *module_files()]
    for name in names:
        if not (source / name).is_file():
            raise SetupError("workspace.exercises_missing", file=str(source / name))
    texts = translated_stubs(lang, names)
    if target.exists() and not target.is_dir():
        raise SetupError("workspace.not_a_folder", path=str(target))
    existing = [name for name in names if (target / name).exists()]
    if existing and not force:
        raise SetupError("workspace.exists", path=str(target), files=", ".join(existing))
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if texts:
            (target / name).write_bytes(texts[name].encode("utf-8"))
        else:
            shutil.copyfile(source / name, target / name)
    write_marker(target, t_in(lang, "workspace.readme", example=example_item(), version=__version__),
                 force, lang)
    return target


def write_marker(target: Path, readme_text: str, force: bool, lang: str) -> None:
    """Mark ``target`` as a workspace and write its README (an existing one stays unless ``force``)."""
    marker = target / MARKER
    marker.parent.mkdir(exist_ok=True)
    info = {"workspace_version": WORKSPACE_VERSION, "llmgrade_version": __version__, "lang": lang}
    marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    readme = target / "README.md"
    if force or not readme.exists():
        readme.write_text(readme_text, encoding="utf-8")


def translated_stubs(lang: str, names: list[str]) -> dict[str, str]:
    """The exercise files in ``lang`` by file name; empty for English (the committed files are used)."""
    if lang == DEFAULT_LANG:
        return {}
    generated = generate(package_dir("solutions"), Path("exercises"), lang)
    return {name: generated[Path("exercises") / name] for name in names}


def read_marker(folder: Path) -> dict[str, Any]:
    """The parsed ``.llmgrade/workspace.json`` of ``folder``; ``SetupError`` if it is corrupt."""
    path = folder / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SetupError("workspace.corrupt_marker", file=str(path), folder=str(folder),
                         reason=str(exc)) from exc
    version = data.get("workspace_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise SetupError("workspace.corrupt_marker", file=str(path), folder=str(folder),
                         reason="no integer workspace_version")
    if version > WORKSPACE_VERSION:
        raise SetupError("workspace.newer_version", file=str(path), found=version,
                         supported=WORKSPACE_VERSION)
    return dict(data)


def has_exercise_files(folder: Path) -> bool:
    """A ``chNN.py`` module or a ``chNN.ipynb`` notebook of some chapter is there."""
    return any((folder / name).is_file() or (folder / name).with_suffix(".ipynb").is_file()
               for name in module_files())


def find_submission(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """The folder (or chapter notebook) to grade.

    ``explicit`` (``--submission``) if given: a chapter notebook (``ch03.ipynb``), or a folder holding
    at least one exercise module or chapter notebook. Otherwise the workspace (a folder with
    ``.llmgrade/workspace.json``) that ``cwd`` (default: the current directory) is in, itself or a
    folder above it, else ``cwd/exercises`` if it exists. Raises ``SetupError``.
    """
    if explicit is not None:
        if explicit.suffix.lower() == ".ipynb" and explicit.is_file():
            return explicit
        if not explicit.is_dir():
            raise SetupError("workspace.missing_folder", path=shown(explicit))
        if not has_exercise_files(explicit):
            nested = explicit / "exercises"
            if nested.is_dir() and has_exercise_files(nested):
                raise SetupError("workspace.no_modules_try_exercises", path=shown(explicit),
                                 suggestion=shown(nested))
            raise SetupError("workspace.no_modules", path=shown(explicit),
                             expected=", ".join(module_files()))
        return explicit
    here = cwd if cwd is not None else Path.cwd()
    found = enclosing_workspace(here)
    if found is not None:
        read_marker(found)
        return found
    if (here / "exercises").is_dir():
        return here / "exercises"
    raise SetupError("workspace.not_found", cwd=str(here))


def enclosing_workspace(folder: Path) -> Path | None:
    """The workspace ``folder`` is in: itself or the nearest folder above it with a marker."""
    for candidate in (folder, *folder.resolve().parents):
        if (candidate / MARKER).is_file():
            return candidate
    return None


def workspace_of(submission: Path) -> Path:
    """The folder a graded submission belongs to: the folder itself, or a notebook's folder (where
    its gradebook and report go)."""
    return submission.parent if submission.suffix.lower() == ".ipynb" and not submission.is_dir() else submission


def workspace_lang(folder: Path) -> str | None:
    """The language the workspace holding ``folder`` was made in (its marker's ``lang``), or None."""
    found = enclosing_workspace(folder)
    if found is None:
        return None
    try:
        lang = json.loads((found / MARKER).read_text(encoding="utf-8")).get("lang")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None  # a corrupt marker is reported by the command that reads it
    return lang if isinstance(lang, str) else None


def use_workspace_lang(folder: Path) -> str | None:
    """Speak the language of the workspace holding ``folder`` (in this process and the ones it
    starts), unless ``LLMGRADE_LANG`` already chooses one; returns the language chosen, or None."""
    if normalize_lang(os.environ.get(ENV_VAR)):
        return None
    lang = normalize_lang(workspace_lang(folder if folder.is_dir() else folder.parent))
    return set_lang(lang) if lang else None


def content_hash(submission: Path, limits: Limits | None = None) -> str:
    """sha256 (hex) of what is graded: the submission's Python files and its chapter notebooks' code,
    as the tree reader (``grader/submission_tree.py``) reads them.

    Covers the exercise modules and any other ``*.py`` file, skipping ``__pycache__``, hidden
    folders (``.llmgrade``, ``.git``, ``.venv``) and virtual environments; a link out of the
    submission is not followed (one inside it counts as the file it names). See :func:`content_hash_of`.
    """
    if not (submission.is_dir() or (submission.is_file() and submission.suffix.lower() == ".ipynb")):
        raise SetupError("workspace.missing_folder", path=shown(submission))
    return content_hash_of(read_tree(submission, limits))


def content_hash_of(tree: Tree) -> str:
    """The content hash of a tree as read. Line endings are normalised to ``\\n`` so a checkout on
    Windows hashes like one on Linux. Each file, in path order, adds
    ``<len(path)>:<path>\\0<len(data)>:<data>`` (path: relative, ``/``-separated, its bytes: UTF-8
    for any name Python can import). A chapter notebook that is graded (no ``.py`` of its chapter)
    adds, under its file name, the module it becomes (``grader/notebooks/convert.py``): outputs and
    left-out cells do not change the hash. A tree over a cap (read only up to it) adds its problem,
    so it never hashes like a tree that was read whole.
    """
    from grader.notebooks.staging import graded_notebook_sources

    entries = [] if tree.single else [(found.name_bytes, found.data) for found in tree.python_files()]
    entries += graded_notebook_sources(tree)
    digest = hashlib.sha256()
    for name, raw in sorted(entries):
        data = raw.replace(b"\r\n", b"\n")
        digest.update(b"%d:%s\0%d:" % (len(name), name, len(data)))
        digest.update(data)
    if tree.problem is not None:
        digest.update(b"\0problem:" + tree.problem[0].encode("utf-8"))
    return digest.hexdigest()
