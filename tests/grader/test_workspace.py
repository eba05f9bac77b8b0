"""Workspaces: init refuses to overwrite, --force, find_submission, content_hash stability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import __version__, catalog
from grader.authoring.workspace import (MARKER, SetupError, content_hash, find_submission, init_workspace,
                              module_files)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_LANG", raising=False)


@pytest.fixture
def exercises(tmp_path: Path) -> Path:
    """A synthetic exercises package: ``__init__.py`` + one small file per module."""
    folder = tmp_path / "pkg_exercises"
    folder.mkdir()
    (folder / "__init__.py").write_text("# exercises\n")
    for module in catalog.MODULES:
        (folder / f"{module}.py").write_text(f"# stub of {module}\n")
    return folder


def test_init_copies_modules_and_writes_marker_and_readme(tmp_path: Path, exercises: Path) -> None:
    target = tmp_path / "work" / "mine"
    assert init_workspace(target, exercises_dir=exercises) == target
    for name in ["__init__.py", *module_files()]:
        assert (target / name).read_bytes() == (exercises / name).read_bytes()
    info = json.loads((target / MARKER).read_text())
    assert info == {"workspace_version": 1, "llmgrade_version": __version__, "lang": "en"}
    readme = (target / "README.md").read_text()
    assert "llmgrade check" in readme and "llmgrade list" in readme


def test_init_refuses_to_overwrite_then_force_replaces(tmp_path: Path, exercises: Path) -> None:
    target = tmp_path / "ws"
    target.mkdir()
    (target / "ch03.py").write_text("my work\n")
    (target / "README.md").write_text("my notes\n")
    with pytest.raises(SetupError) as info:
        init_workspace(target, exercises_dir=exercises)
    assert info.value.message_id == "workspace.exists"
    assert "ch03.py" in str(info.value) and "--force" in str(info.value)
    assert (target / "ch03.py").read_text() == "my work\n"
    assert not (target / "ch02.py").exists()  # nothing half-copied

    init_workspace(target, force=True, exercises_dir=exercises)
    assert (target / "ch03.py").read_text() == "# stub of ch03\n"
    assert "llmgrade check" in (target / "README.md").read_text()


def test_init_keeps_an_unrelated_readme(tmp_path: Path, exercises: Path) -> None:
    target = tmp_path / "ws"
    target.mkdir()
    (target / "README.md").write_text("mine\n")
    init_workspace(target, exercises_dir=exercises)
    assert (target / "README.md").read_text() == "mine\n"


def test_init_errors(tmp_path: Path, exercises: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(SetupError) as info:
        init_workspace(a_file, exercises_dir=exercises)
    assert info.value.message_id == "workspace.not_a_folder"
    (exercises / "ch05.py").unlink()
    with pytest.raises(SetupError) as info:
        init_workspace(tmp_path / "new", exercises_dir=exercises)
    assert info.value.message_id == "workspace.exercises_missing"
    assert "ch05.py" in str(info.value)
    assert not (tmp_path / "new").exists()


def test_find_submission_explicit(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "ch04.py").write_text("")
    assert find_submission(folder, cwd=tmp_path / "elsewhere") == folder

    with pytest.raises(SetupError) as info:
        find_submission(tmp_path / "missing")
    assert info.value.message_id == "workspace.missing_folder"

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SetupError) as info:
        find_submission(empty)
    assert info.value.message_id == "workspace.no_modules"
    assert "ch02.py" in str(info.value) and str(empty) in str(info.value)

    (empty / "exercises").mkdir()
    (empty / "exercises" / "ch02.py").write_text("")
    with pytest.raises(SetupError) as info:
        find_submission(empty)
    assert info.value.message_id == "workspace.no_modules_try_exercises"
    assert str(empty / "exercises") in str(info.value)


def test_find_submission_from_cwd(tmp_path: Path, exercises: Path) -> None:
    workspace = init_workspace(tmp_path / "ws", exercises_dir=exercises)
    assert find_submission(cwd=workspace) == workspace

    repo = tmp_path / "repo"
    (repo / "exercises").mkdir(parents=True)
    assert find_submission(cwd=repo) == repo / "exercises"

    # a workspace marker wins over an exercises/ folder inside it
    (workspace / "exercises").mkdir()
    assert find_submission(cwd=workspace) == workspace

    with pytest.raises(SetupError) as info:
        find_submission(cwd=tmp_path / "nothing")
    assert info.value.message_id == "workspace.not_found"
    assert "llmgrade init DIR" in str(info.value) and "--submission" in str(info.value)


def test_find_submission_defaults_to_the_current_directory(
        tmp_path: Path, exercises: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = init_workspace(tmp_path / "ws", exercises_dir=exercises)
    monkeypatch.chdir(workspace)
    assert find_submission().resolve() == workspace.resolve()


@pytest.mark.parametrize(("text", "message_id"), [
    ("{not json", "workspace.corrupt_marker"),
    ('{"llmgrade_version": "0.1.0"}', "workspace.corrupt_marker"),
    ("[1, 2]", "workspace.corrupt_marker"),
    ('{"workspace_version": 99}', "workspace.newer_version"),
])
def test_corrupt_or_newer_marker_is_a_clear_error(tmp_path: Path, text: str, message_id: str) -> None:
    (tmp_path / MARKER).parent.mkdir()
    (tmp_path / MARKER).write_text(text)
    with pytest.raises(SetupError) as info:
        find_submission(cwd=tmp_path)
    assert info.value.message_id == message_id
    assert str(tmp_path / MARKER) in str(info.value)
    assert "\n" not in str(info.value)


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


FILES = {"ch02.py": b"x = 1\n", "ch03.py": b"def f():\n    return 2\n", "helpers/util.py": b"# mine\n"}


def test_hash_is_stable_and_independent_of_location_and_creation_order(tmp_path: Path) -> None:
    first = _tree(tmp_path / "a", FILES)
    second = _tree(tmp_path / "deep" / "b", dict(reversed(list(FILES.items()))))
    assert content_hash(first) == content_hash(second)
    # pinned: the hash is stored in gradebooks, so the algorithm must not drift between versions
    assert content_hash(first) == PINNED


PINNED = "0797112d84b1f9d7f7af936e97efadea2e8df26575668bd4a7f43733569aa554"


def test_hash_ignores_caches_markers_hidden_folders_and_line_endings(tmp_path: Path) -> None:
    base = content_hash(_tree(tmp_path / "a", FILES))
    noisy = _tree(tmp_path / "b", {
        **{rel: data.replace(b"\n", b"\r\n") for rel, data in FILES.items()},
        "__pycache__/ch02.cpython-311.py": b"junk",
        ".llmgrade/workspace.json": b"{}",
        ".llmgrade/extra.py": b"junk",
        ".venv/lib/site.py": b"junk",
        "env/pyvenv.cfg": b"home = /usr\n",
        "env/lib/os.py": b"junk",
        "README.md": b"notes",
        "data.txt": b"text",
    })
    assert content_hash(noisy) == base


@pytest.mark.parametrize("change", ["edit", "rename", "add", "remove"])
def test_hash_changes_with_the_code(tmp_path: Path, change: str) -> None:
    base = content_hash(_tree(tmp_path / "a", FILES))
    files = dict(FILES)
    if change == "edit":
        files["ch02.py"] = b"x = 2\n"
    elif change == "rename":
        files["ch04.py"] = files.pop("ch03.py")
    elif change == "add":
        files["notes.py"] = b""
    else:
        del files["helpers/util.py"]
    assert content_hash(_tree(tmp_path / "b", files)) != base


def test_hash_of_a_missing_folder_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as info:
        content_hash(tmp_path / "missing")
    assert info.value.message_id == "workspace.missing_folder"
