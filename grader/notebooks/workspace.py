"""``llmgrade init --notebooks DIR``: a workspace of chapter notebooks, ready for ``jupyter lab``.

Each ``chNN.ipynb`` holds, in order: the chapter's introduction (markdown), a cell that loads the
extension (``%load_ext llmgrade``), the imports, and for each exercise its text (markdown, from the
stub's docstring) and its stub (code). Imports between chapters read ``from ch03 import X``: with the
extension loaded, ``import ch03`` in the kernel loads the definitions of ``ch03.ipynb``
(:func:`install_notebook_importer`), and grading turns it into the package's relative import.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader import __version__, catalog
from grader.authoring.packages import package_dir
from grader.authoring.workspace import translated_stubs, write_marker
from grader.errors import SetupError
from grader.messages import current_lang, t_in
from grader.notebooks.convert import cells_from_notebook, convert_cells
from grader.notebooks.staging import SUFFIX


def notebook_cells(stub: str, module: str, lang: str) -> list[tuple[str, str]]:
    """``(cell_type, source)`` pairs for one chapter's stub module."""
    tree = ast.parse(stub)
    lines = stub.splitlines()
    doc = ast.get_docstring(tree) or module
    first_item = next((item.id for item in catalog.ITEMS if item.module == module), module)
    cells = [("markdown", f"# {module}\n\n{doc}"),
             ("markdown", t_in(lang, "notebooks.workspace_check_cell", example=first_item)),
             ("code", "%load_ext llmgrade")]
    imports: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring: the first markdown cell
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(d.lineno for d in decorators)])
        source = "\n".join(lines[start - 1:node.end_lineno])
        if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .ch03 -> from ch03 (a notebook)
            source = "from " + source.removeprefix("from .")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(source)
            continue
        if imports:
            cells.append(("code", "\n".join(imports)))
            imports = []
        text = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else None
        if text:
            cells.append(("markdown", f"## `{getattr(node, 'name', '')}`\n\n{text}"))
        cells.append(("code", source))
    if imports:
        cells.append(("code", "\n".join(imports)))
    cells.append(("code", f"%llmgrade {first_item}"))
    return cells


def init_notebook_workspace(target: Path, force: bool = False, exercises_dir: Path | None = None,
                            lang: str | None = None) -> Path:
    """Write one notebook per chapter into ``target`` (refuses to overwrite unless ``force``), with
    the exercise texts in ``lang`` (default: the current language)."""
    nbformat: Any = importlib.import_module("nbformat")  # untyped library
    v4 = nbformat.v4
    lang = lang or current_lang()
    source = exercises_dir or package_dir("exercises")
    texts = translated_stubs(lang, [f"{module}.py" for module in catalog.MODULES])
    if target.exists() and not target.is_dir():
        raise SetupError("workspace.not_a_folder", path=str(target))
    names = [f"{module}{SUFFIX}" for module in catalog.MODULES]
    existing = [name for name in names if (target / name).exists()]
    if existing and not force:
        raise SetupError("workspace.exists", path=str(target), files=", ".join(existing))
    target.mkdir(parents=True, exist_ok=True)
    for module in catalog.MODULES:
        stub_path = source / f"{module}.py"
        if not stub_path.is_file():
            raise SetupError("workspace.exercises_missing", file=str(stub_path))
        stub = texts.get(stub_path.name) or stub_path.read_text("utf-8")
        cells = [v4.new_markdown_cell(text) if kind == "markdown" else v4.new_code_cell(text)
                 for kind, text in notebook_cells(stub, module, lang)]
        notebook = v4.new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(notebook, str(target / f"{module}{SUFFIX}"))
    example = catalog.ITEMS[0].id
    write_marker(target, t_in(lang, "notebooks.workspace_readme", example=example, version=__version__), force, lang)
    return target


class NotebookImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import ch03`` in a kernel loads the definitions of ``ch03.ipynb`` in ``folder`` (when there
    is no ``ch03.py``), converted exactly as grading converts it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        notebook = self.folder / f"{fullname}{SUFFIX}"
        if fullname not in catalog.MODULES or (self.folder / f"{fullname}.py").exists() or not notebook.is_file():
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(notebook))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        nbformat: Any = importlib.import_module("nbformat")  # untyped library
        origin = str(module.__spec__.origin if module.__spec__ else "")
        converted = convert_cells(cells_from_notebook(nbformat.read(origin, as_version=4)), Path(origin).name)
        module.__file__ = origin
        exec(compile(converted.code, origin, "exec"), module.__dict__)


def install_notebook_importer(folder: Path) -> NotebookImporter:
    """Add (once) the importer for chapter notebooks in ``folder`` to ``sys.meta_path``."""
    for finder in sys.meta_path:
        if isinstance(finder, NotebookImporter) and finder.folder == folder:
            return finder
    finder = NotebookImporter(folder)
    sys.meta_path.append(finder)
    return finder
