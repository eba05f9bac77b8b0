"""No English sentence fragment reaches a message from the hidden suites' own text.

The suites and check bodies describe what they compare (``what``: "LayerNorm output for rows that
are constant") in message parameters. Such a description is a catalog fragment
(``phrase("what.layernorm_output_for_rows_that")``, ``grader/locales/<lang>/fragments.json``), so
a Chinese run says it in Chinese and a report can say it again in another language. A static check
reads every suite: a string that contains English words (the untranslated-English detector of
``test_translations``) may not be given to a parameter that a message renders.
"""

from __future__ import annotations

import ast
import pickle
import re
import string
from pathlib import Path

from grader.checking.failures import GradeFailure
from grader.messages import Phrase, _load, decode_params, encode_params, phrase, render_stored, t_in
from tests.grader.test_translations import prose, untranslated_words

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted(ROOT.glob("grader/suites/*.py")), *sorted(ROOT.glob("grader/checking/**/*.py")),
           ROOT / "grader/sandbox/parent.py"]
# Declarations' titles are translated by item id; statuses are ids; ``text`` is the input text a check
# gave the student's code, quoted back as data ("Every effort moves you").
NOT_RENDERED = {"title", "status", "text"}


def rendered_names() -> set[str]:
    """Every placeholder name of the English catalog: a keyword argument so named is rendered."""
    names = {name.split(".")[0].split("[")[0] for text in _load("en").values()
             for _, name, _, _ in string.Formatter().parse(text) if name}
    return names - NOT_RENDERED


def _strings(node: ast.expr) -> list[str]:
    """The literal text of a string expression (an f-string's fields as blanks), through ``a if c else b``
    and ``a + b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [" ".join(v.value if isinstance(v, ast.Constant) else " " for v in node.values)]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    return []


def parameters(tree: ast.Module) -> dict[str, list[str]]:
    """The positional parameter names of each function defined in ``tree``."""
    return {node.name: [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


SHARED = {name: params for path in ("grader/checking/compare.py", "grader/checking/checks.py")
          for name, params in parameters(ast.parse((ROOT / path).read_text("utf-8"))).items()}


def english(text: str) -> list[str]:
    """The detector of ``test_translations``, and also two or more plain words even where each is a
    name from the code or a kept term ("batch inputs", "token ids"). A name or a list of names
    ("val", "att, ff, norm1") is code: a split's key, a module's attributes."""
    if re.fullmatch(r"\s*\w+(\s*,\s*\w+)*\s*", text):
        return []
    found = untranslated_words(text)
    if found:
        return found
    words = [w for w in re.findall(r"[A-Za-z]+", prose(text)) if len(w) > 1 and not w.isupper()
             and not re.search(r"[a-z][A-Z]", w)]
    return words if len(words) >= 2 else []


def english_arguments(source: str) -> list[tuple[int, str, str]]:
    """``(line, parameter, text)`` for each English literal given where a message renders it: a keyword
    argument named like a placeholder, a positional argument whose parameter is so named (functions of
    the same file and of ``compare.py``/``checks.py``: ``expect_tensor(got, want, "...")``) and an
    assignment to ``what``."""
    names = rendered_names()
    tree = ast.parse(source)
    known = {**SHARED, **parameters(tree)}
    found = []
    for node in ast.walk(tree):
        targets: list[tuple[str, ast.expr]] = []
        if isinstance(node, ast.Call):
            targets += [(k.arg, k.value) for k in node.keywords if k.arg in names]
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            targets += [(param, arg) for param, arg in zip(known.get(func, []), node.args) if param in names]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "what" for t in node.targets):
            targets.append(("what", node.value))
        for name, value in targets:
            found += [(value.lineno, name, text) for text in _strings(value) if english(text)]
    return found


def test_suites_give_messages_no_english_text() -> None:
    found = {f"{path.relative_to(ROOT)}:{line}": f"{name}={text!r}" for path in SOURCES
             for line, name, text in english_arguments(path.read_text("utf-8"))}
    assert found == {}, "describe these with phrase(...) and a fragment in grader/locales/*/fragments.json"


def test_the_static_check_finds_english_arguments() -> None:
    """It is not blind: free English in each kind of place is found, code and phrases are not."""
    source = '''
raise GradeFailure("compare.value", what="the keys of the model", expected=1, got=2)
expect_tensor(got, want, f"features of batch {b}")
what = "the loss of " + str(n) + " batches"
student.run("x", what="exercise_4_1_parameter_counts(GPT_CONFIG_124M)")
expect_equal(got, want, phrase("what.keys", what=what))
declare(title="A custom Dataset")
def _expect_list(got, want, what): pass
_expect_list(got, want, "train_accs (one per epoch)")
_expect_list(got, want, "train_accs")
expect_tensor(g, e, f"{name} batch {b} inputs")
raise GradeFailure("ch04.init_order", what=name, order="att, ff, norm1, norm2")
'''
    assert sorted((line, name) for line, name, _ in english_arguments(source)) == [
        (2, "what"), (3, "what"), (4, "what"), (9, "what"), (11, "what")]


def test_every_phrase_the_code_names_is_in_the_catalog_with_its_parameters() -> None:
    """Each ``phrase("id", ...)`` names an id of the catalog and gives exactly its placeholders (a
    mistake here would only show when a check fails, as a KeyError instead of the message)."""
    english = _load("en")
    calls = [node for path in SOURCES for node in ast.walk(ast.parse(path.read_text("utf-8")))
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "phrase"]
    named = [(c.args[0].value, sorted(k.arg or "" for k in c.keywords)) for c in calls
             if c.args and isinstance(c.args[0], ast.Constant)]
    assert len(named) > 100
    assert sorted({key for key, _ in named} - english.keys()) == []
    wrong = {key: (given, fields) for key, given in named
             if given != (fields := sorted({f for _, f, _, _ in string.Formatter().parse(english[key]) if f}))}
    assert wrong == {}


def test_a_phrase_is_rendered_in_the_language_of_the_message_that_holds_it() -> None:
    what = phrase("what.layernorm_output_for_rows_that")
    assert isinstance(what, str) and str(what) == "LayerNorm output for rows that are constant"
    assert t_in("zh-CN", "compare.nonfinite", what=what, count=2, index=[0, 1]).startswith("LayerNorm对取值全部相同的行的输出")
    nested = phrase("check.what.output", what=phrase("what.multiheadattention_in_training_mode"))
    assert "训练模式下的MultiHeadAttention" in t_in("zh-CN", "compare.dtype", what=nested, expected="a", got="b")


def test_stored_parameters_render_again_in_either_language() -> None:
    failure = GradeFailure("compare.value", what=phrase("what.batch", what="create_dataloader_v1(txt)", b=3),
                           expected="[1]", got="[2]")
    stored = encode_params(failure.params)
    assert stored["what"] == {"$phrase": "what.batch", "params": {"what": "create_dataloader_v1(txt)", "b": 3}}
    assert render_stored("en", failure.message_id, stored) == str(failure)
    chinese = render_stored("zh-CN", failure.message_id, stored)
    assert chinese is not None and "create_dataloader_v1(txt)的第3个批次" in chinese and not untranslated_words(chinese)
    assert isinstance(decode_params(stored)["what"], Phrase)
    # A catalog that no longer fits the stored parameters gives None (the caller keeps the text).
    assert render_stored("zh-CN", "compare.value", {"what": "x"}) is None
    assert render_stored("zh-CN", "no.such.id", {}) is None


def test_a_failure_with_phrases_survives_pickling() -> None:
    """pytest may pickle an exception: the phrase stays a phrase."""
    failure = GradeFailure("compare.value", what=phrase("what.keys", what="ds"), expected="1", got="2")
    again = pickle.loads(pickle.dumps(failure.params))
    assert isinstance(again["what"], Phrase) and again["what"].key == "what.keys"
