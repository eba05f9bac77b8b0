"""Real notebooks (written by nbformat) made from the model answers, the way a reader's look.

Each top-level statement of a module gets its own code cell, with markdown between them; the
notebook also holds magics, a shell escape, a training cell, a plot cell and demo calls next to
definitions. None of those may run when the notebook is graded: the training and plot cells write a
sentinel file if they run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.catalog import MODULES


def absolute_imports(source: str) -> str:
    """``from .ch03 import X`` as a reader writes it in a notebook: ``from ch03 import X``."""
    for module in MODULES:
        source = source.replace(f"from .{module} import ", f"from {module} import ")
    return source


def statement_sources(source: str) -> list[str]:
    lines = source.splitlines()
    tree = ast.parse(source)
    chunks = []
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(d.lineno for d in decorators)])
        chunks.append("\n".join(lines[start - 1:node.end_lineno]))
    return chunks


def reader_notebook(source: str, sentinel: Path) -> nbformat.NotebookNode:
    """The module ``source`` as a reader's notebook, with experiments that must never run."""
    cells = [new_markdown_cell("# My notes for this chapter"),
             new_code_cell("%matplotlib inline\n!pip install tiktoken\n%load_ext autoreload"),
             new_code_cell("try:\n    import matplotlib.pyplot as plt\nexcept ImportError:\n    plt = None")]
    for number, chunk in enumerate(statement_sources(absolute_imports(source))):
        cells.append(new_markdown_cell(f"Step {number}: the next definition."))
        if chunk.startswith(("class ", "def ")) and number % 3 == 0:
            name = chunk.split()[1].split("(")[0].split(":")[0]
            chunk += f"\n\nprint('defined', {name!r})\n{name}?"  # a demo line and IPython help
        cells.append(new_code_cell(chunk))
    cells += [
        new_markdown_cell("## Training"),
        new_code_cell(f"losses = []\nfor epoch in range(3):\n    losses.append(epoch)\n"
                      f"open({str(sentinel) + '.train'!r}, 'w').write('the training cell ran')"),
        new_code_cell(f"plt.plot(losses)\nplt.savefig({str(sentinel) + '.png'!r})\n"
                      f"open({str(sentinel) + '.plot'!r}, 'w').write('the plot cell ran')"),
        new_code_cell("%%time\nfor step in range(10 ** 9):\n    pass"),
    ]
    return new_notebook(cells=cells)


def write_notebooks(source_dir: Path, target: Path, sentinel: Path) -> list[Path]:
    """One ``chNN.ipynb`` per module of ``source_dir`` in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for module in MODULES:
        path = target / f"{module}.ipynb"
        nbformat.write(reader_notebook((source_dir / f"{module}.py").read_text("utf-8"), sentinel), str(path))
        written.append(path)
    return written


def notebook_with_cells(*sources: str) -> nbformat.NotebookNode:
    """A notebook whose cell ``n`` (1-based) is ``sources[n-1]``: markdown for text starting ``#md``."""
    cells = [new_markdown_cell(text[3:]) if text.startswith("#md") else new_code_cell(text) for text in sources]
    return new_notebook(cells=cells)
