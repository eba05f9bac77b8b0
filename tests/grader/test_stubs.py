"""The stub generator on synthetic solution sources: replacement, byte preservation, errors, build_stubs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader import catalog
from grader.errors import SetupError
from grader.authoring.stubs import StubError, build_stubs, header, make_stub, split_lines
from tests.grader.synthetic import write_solutions

MHA = '''"""Chapter 3 solutions."""

from __future__ import annotations

import math

SCALE = 2  # a given constant


def _given_helper(x):
    return x + 1


class MultiHeadAttention:
    """Multi-head attention with weight splits.

    Book section: 3.6.2.
    """

    def __init__(self, d_in, d_out):
        """Create W_query, W_key and W_value."""
        self.d_in = d_in
        # BEGIN SOLUTION
        self.d_out = d_out * SCALE
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        return math.sqrt(x)
        # END SOLUTION

    def only_docstring(self):
        """Return the answer."""
        # BEGIN SOLUTION
        return 42
        # END SOLUTION


def exercise_3_2_wrapper(d_in):
    """Return the wrapper's arguments.

    More text that is not the first line.
    """
    if d_in:
        # BEGIN SOLUTION
        return 1
        # END SOLUTION
    # BEGIN SOLUTION
    return 2
    # END SOLUTION
'''


def _raises_in(stub: str) -> list[str]:
    return [line.strip() for line in stub.splitlines()
            if line.strip().startswith("raise NotImplementedError(")]


def _body(stub: str) -> str:
    """The stub without its header comment."""
    return stub[len(header("ch03")):]


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)


def test_blocks_become_raises_with_item_and_task() -> None:
    stub = make_stub(MHA, "ch03")
    assert _raises_in(stub) == [
        'raise NotImplementedError("Exercise ch03.MultiHeadAttention: Create W_query, W_key and W_value.")',
        # no method docstring: the class docstring's first line
        'raise NotImplementedError("Exercise ch03.MultiHeadAttention: Multi-head attention with weight splits.")',
        'raise NotImplementedError("Exercise ch03.MultiHeadAttention: Return the answer.")',
        "raise NotImplementedError(\"Exercise 3.2: Return the wrapper's arguments.\")",
        "raise NotImplementedError(\"Exercise 3.2: Return the wrapper's arguments.\")",
    ]
    assert "BEGIN SOLUTION" not in stub and "END SOLUTION" not in stub
    assert "math.sqrt" not in stub and "d_out * SCALE" not in stub and "return 42" not in stub


def test_everything_outside_blocks_is_kept_byte_for_byte() -> None:
    stub = _body(make_stub(MHA, "ch03"))
    kept: list[str] = []
    inside = False
    for line in split_lines(MHA):
        if "# BEGIN SOLUTION" in line:
            inside = True
        elif "# END SOLUTION" in line:
            inside = False
        elif not inside:
            kept.append(line)
    assert [line for line in split_lines(stub) if "raise NotImplementedError(" not in line] == kept


def test_raise_sits_at_the_marker_indentation() -> None:
    stub = make_stub(MHA, "ch03")
    lines = stub.splitlines()
    in_if = next(line for line in lines if "Exercise 3.2" in line)
    assert in_if.startswith(" " * 8 + "raise")
    in_method = next(line for line in lines if "MultiHeadAttention: Create W_query" in line)
    assert in_method.startswith(" " * 8 + "raise")


def test_stub_runs_and_raises(tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(compile(make_stub(MHA, "ch03"), "stub.py", "exec"), namespace)
    cls = namespace["MultiHeadAttention"]
    assert isinstance(cls, type)
    obj = object.__new__(cls)
    with pytest.raises(NotImplementedError, match=r"^Exercise ch03\.MultiHeadAttention: Return the answer\.$"):
        obj.only_docstring()
    with pytest.raises(NotImplementedError, match=r"^Exercise ch03\.MultiHeadAttention: Create W_query"):
        cls(1, 2)
    func = namespace["exercise_3_2_wrapper"]
    assert callable(func)
    for arg in (0, 1):
        with pytest.raises(NotImplementedError, match=r"^Exercise 3\.2: "):
            func(arg)
    given = namespace["_given_helper"]
    assert callable(given) and given(1) == 2


def test_innermost_function_docstring_names_the_task() -> None:
    source = '''
def exercise_3_1_copy_weights(a, b):
    """Copy the weights."""
    def helper(x):
        """Transpose one matrix."""
        # BEGIN SOLUTION
        return x.T
        # END SOLUTION
    # BEGIN SOLUTION
    return helper(a)
    # END SOLUTION
'''
    assert _raises_in(make_stub(source, "ch03")) == [
        'raise NotImplementedError("Exercise 3.1: Transpose one matrix.")',
        'raise NotImplementedError("Exercise 3.1: Copy the weights.")',
    ]


def test_no_docstring_anywhere_falls_back_to_the_item_title() -> None:
    source = "def exercise_3_1_copy_weights(a, b):\n    # BEGIN SOLUTION\n    return a\n    # END SOLUTION\n"
    title = catalog.BY_ID["3.1"].title
    assert _raises_in(make_stub(source, "ch03")) == [f'raise NotImplementedError("Exercise 3.1: {title}")']


def test_quotes_and_backslashes_in_the_task_are_escaped() -> None:
    source = ('def exercise_3_1_copy_weights(a):\n    r"""Say "hi" \\ bye."""\n'
              "    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n")
    namespace: dict[str, object] = {}
    exec(make_stub(source, "ch03"), namespace)
    func = namespace["exercise_3_1_copy_weights"]
    assert callable(func)
    with pytest.raises(NotImplementedError) as info:
        func(None)
    assert str(info.value) == 'Exercise 3.1: Say "hi" \\ bye.'


def test_crlf_line_endings_are_kept() -> None:
    stub = make_stub(MHA.replace("\n", "\r\n"), "ch03")
    assert "\n" not in stub.replace("\r\n", "")
    assert len(_raises_in(stub)) == 5


def test_marker_words_inside_a_string_are_not_markers() -> None:
    source = ('def exercise_3_1_copy_weights(a):\n    """Text that says\n    # BEGIN SOLUTION\n    """\n'
              "    return a\n")
    assert make_stub(source, "ch03").endswith(source)


def test_header_tells_what_the_file_is_and_how_to_check() -> None:
    stub = make_stub(MHA, "ch03")
    head = header("ch03")
    assert stub.startswith(head)
    assert all(line.startswith("#") for line in head.splitlines())
    assert "llmgrade check" in head and "ch03" in head
    assert catalog.CHAPTER_TITLES["ch03"] in head.replace("\n# ", " ")
    # the module docstring is still the module docstring
    assert ast.get_docstring(ast.parse(stub)) == "Chapter 3 solutions."


def test_shebang_and_coding_cookie_stay_first() -> None:
    source = "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\nX = 1\n"
    stub = make_stub(source, "ch03")
    assert stub.startswith("#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n# ch03.py")
    assert stub.endswith("X = 1\n")


def _error(source: str, module: str = "ch03") -> StubError:
    with pytest.raises(StubError) as info:
        make_stub(source, module, filename="solutions/x.py")
    return info.value


def _func(body: str, name: str = "exercise_3_1_copy_weights") -> str:
    return f"def {name}(a):\n" + body


@pytest.mark.parametrize(
    ("source", "message_id", "line"),
    [
        (_func("    # BEGIN SOLUTION\n    return a\n"), "stubs.begin_without_end", 2),
        (_func("    return a\n    # END SOLUTION\n"), "stubs.end_without_begin", 3),
        (_func("    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    a\n    # END SOLUTION\n"), "stubs.nested", 3),
        (_func("    x = 1  # BEGIN SOLUTION\n    # END SOLUTION\n"), "stubs.marker_not_alone", 2),
        (_func("    x = (1,\n         # BEGIN SOLUTION\n         2)\n    # END SOLUTION\n"),
         "stubs.marker_not_alone", 3),
        (_func("    if a:\n        # BEGIN SOLUTION\n        a\n    # END SOLUTION\n"), "stubs.marker_indent", 5),
        (_func("    # BEGIN SOLUTION\n    if a:\n        pass\n# x\n    # END SOLUTION\n") + "\n",
         None, 0),
        ("X = 1\n# BEGIN SOLUTION\nY = 2\n# END SOLUTION\n", "stubs.outside_function", 2),
        ("class MultiHeadAttention:\n    # BEGIN SOLUTION\n    y = 2\n    # END SOLUTION\n",
         "stubs.outside_function", 2),
        (_func("    # BEGIN SOLUTION\n    return a\n    # END SOLUTION\n", name="not_in_catalog"),
         "stubs.unknown_symbol", 2),
        (_func("    # BEGIN SOLUTION\n    return a\n    # END SOLUTION\n", name="_private_helper"),
         "stubs.unknown_symbol", 2),
        (_func("    # begin solution\n    return a\n    # end solution\n"), "stubs.marker_typo", 2),
        (_func("    return a\n    # END SOLUTIONS\n"), "stubs.marker_typo", 3),
        (_func("    return (a\n"), "stubs.syntax_error", None),
    ],
)
def test_errors_name_file_and_line(source: str, message_id: str | None, line: int | None) -> None:
    if message_id is None:  # a comment line dedented inside a block is fine: it is not code
        assert "raise NotImplementedError" in make_stub(source, "ch03")
        return
    error = _error(source)
    assert isinstance(error, SetupError)
    assert error.message_id == message_id
    text = str(error)
    assert text.startswith("solutions/x.py")
    if line is not None:
        assert error.params["line"] == line
        assert f"line {line}" in text
    assert "\n" not in text


def test_code_outdented_inside_a_block_is_an_error() -> None:
    source = ("class MultiHeadAttention:\n    def f(self):\n        # BEGIN SOLUTION\n        pass\n"
              "    def g(self):\n        pass\n        # END SOLUTION\n")
    error = _error(source)
    assert error.message_id in ("stubs.code_outdented", "stubs.outside_function")
    assert error.params["line"] in (3, 5)


def test_block_wrapping_a_docstring_is_not_in_the_body() -> None:
    source = _func('    # BEGIN SOLUTION\n    """Doc."""\n    # END SOLUTION\n')
    assert _error(source).message_id == "stubs.outside_function"


def test_build_stubs_writes_every_module_and_check_finds_differences(tmp_path: Path) -> None:
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    write_solutions(solutions)
    written = build_stubs(solutions, exercises)
    expected = {exercises / "__init__.py", *(exercises / f"{m}.py" for m in catalog.MODULES)}
    assert set(written) == expected
    assert all(path.is_file() for path in expected)
    assert (exercises / "__init__.py").read_text().startswith("# ")
    assert "raise NotImplementedError(\"Exercise ch02.SimpleTokenizerV1: Do the thing.\")" in (
        exercises / "ch02.py").read_text()
    assert build_stubs(solutions, exercises, check=True) == []

    (exercises / "ch04.py").write_text("changed\n")
    (exercises / "ch05.py").unlink()
    before = {p: p.read_bytes() for p in exercises.iterdir() if p.is_file()}
    assert build_stubs(solutions, exercises, check=True) == [exercises / "ch04.py", exercises / "ch05.py"]
    assert {p: p.read_bytes() for p in exercises.iterdir() if p.is_file()} == before  # check writes nothing


def test_build_stubs_errors_leave_exercises_untouched(tmp_path: Path) -> None:
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    write_solutions(solutions)
    build_stubs(solutions, exercises)
    before = {p.name: p.read_bytes() for p in exercises.iterdir()}
    (solutions / "ch02.py").write_text(
        (solutions / "ch02.py").read_text() + "# BEGIN SOLUTION\n")
    (solutions / "ch07.py").write_text("# ch07 changed\n")
    with pytest.raises(StubError) as info:
        build_stubs(solutions, exercises)
    assert info.value.message_id == "stubs.begin_without_end"
    assert str(solutions / "ch02.py") in str(info.value)
    assert {p.name: p.read_bytes() for p in exercises.iterdir()} == before


def test_build_stubs_missing_solution_or_folder(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    write_solutions(solutions)
    (solutions / "appendix_d.py").unlink()
    with pytest.raises(StubError) as info:
        build_stubs(solutions, tmp_path / "exercises")
    assert info.value.message_id == "stubs.missing_solution"
    assert "appendix_d.py" in str(info.value)
    with pytest.raises(StubError) as info:
        build_stubs(tmp_path / "nowhere", tmp_path / "exercises")
    assert info.value.message_id == "stubs.missing_folder"
    assert not (tmp_path / "exercises").exists()


def test_non_utf8_solution_is_a_clear_error(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    write_solutions(solutions)
    (solutions / "ch03.py").write_bytes(b"X = '\xff'\n")
    with pytest.raises(StubError) as info:
        build_stubs(solutions, tmp_path / "exercises")
    assert info.value.message_id == "stubs.unreadable"
    assert "ch03.py" in str(info.value)


def test_a_stub_that_would_not_parse_is_an_error() -> None:
    source = _func("    x = 1\n        # BEGIN SOLUTION\n        # END SOLUTION\n")
    error = _error(source)
    assert error.message_id == "stubs.invalid_stub"
    assert "solutions/x.py" in str(error)


def test_package_dir_of_a_missing_package_is_a_setup_error() -> None:
    from grader.authoring.packages import package_dir

    assert (package_dir("solutions") / "__init__.py").is_file()
    with pytest.raises(SetupError) as info:
        package_dir("no_such_package_llmgrade")
    assert info.value.message_id == "setup.no_package"
    assert "no_such_package_llmgrade" in str(info.value)
