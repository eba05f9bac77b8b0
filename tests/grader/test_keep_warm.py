"""``llmgrade check`` kept warm: a keeper serves the next check of the same item from a standby.

The keeper may make a check faster, never different: it grades the code as saved at the request,
it answers only this user's CLI (the lease's token), anything but the same request ends it (and the
CLI grades cold), and it ends when asked, when idle, and leaves no process or file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import SetupError
from grader.results import GradeRun
from grader.runner import keep_warm
from grader.runner.commands import check_run, check_run_kept_warm
from grader.runner.keep_warm import Place, Request, ask, minutes, request_for, runtime_dir, start_keeper, stop

ROOT = Path(__file__).resolve().parents[2]
GELU_RIGHT = "return 0.5 * x * (1 + torch.tanh("
GELU_WRONG = "return 0.4 * x * (1 + torch.tanh("
START_WAIT_S = 120.0


def _work(folder: Path) -> Path:
    work = folder / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    return work.resolve()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")


def _pid(place: Place) -> int | None:
    try:
        return int(json.loads(place.lease.read_text("utf-8"))["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child in these tests) has ended
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _wait(condition: object, timeout_s: float = START_WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _end(place: Place) -> None:
    pid = _pid(place)
    stop(place)
    if pid is not None and _alive(pid):
        os.kill(pid, 15)
        _wait(lambda: not _alive(pid), 30)


def _summary(run: GradeRun) -> list[tuple[str, str, float, list[tuple[str, str]]]]:
    return [(i.id, i.status, i.points, [(c.name, c.status) for c in i.checks]) for i in run.items]


# --- settings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "environ", "interactive", "expected"), [
    (None, {}, True, keep_warm.DEFAULT_MINUTES),        # a student at a terminal
    (None, {}, False, 0.0),                               # a script or a test: asks, starts nothing
    (None, {"CI": "true"}, True, 0.0),
    (None, {"LLMGRADE_KEEP_WARM": "3"}, False, 3.0),
    (None, {"LLMGRADE_KEEP_WARM": "0"}, True, None),      # off: neither asked nor started
    (True, {"LLMGRADE_KEEP_WARM": "0"}, False, keep_warm.DEFAULT_MINUTES),
    (True, {"LLMGRADE_KEEP_WARM": "2.5"}, False, 2.5),
    (False, {"LLMGRADE_KEEP_WARM": "5"}, True, None),
])
def test_minutes_follow_the_option_then_the_variable_then_the_terminal(
        option: bool | None, environ: dict[str, str], interactive: bool, expected: float | None) -> None:
    assert minutes(option, environ, interactive) == expected


@pytest.mark.parametrize("value", ["ten", "-1", "nan", "inf"])
def test_a_bad_variable_is_a_setup_error(value: str) -> None:
    with pytest.raises(SetupError) as caught:
        minutes(None, {"LLMGRADE_KEEP_WARM": value}, True)
    assert caught.value.message_id == "keep_warm.bad_env" and value in str(caught.value)


def test_the_cli_says_what_is_wrong_with_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRADE_KEEP_WARM", "soon")
    result = CliRunner().invoke(main, ["check", "ch04.GELU", "--submission", str(_work(tmp_path))])
    assert result.exit_code == 2
    assert "LLMGRADE_KEEP_WARM must be a number of minutes" in result.stderr and "'soon'" in result.stderr


def test_a_runtime_folder_too_long_for_a_socket_is_not_used(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 80)
    deep.mkdir()
    chosen = runtime_dir({"XDG_RUNTIME_DIR": str(deep)})
    assert chosen is not None and not chosen.is_relative_to(deep)
    place = Place.of(ROOT / "solutions", {"XDG_RUNTIME_DIR": str(deep)})
    assert place is not None and len(os.fsencode(place.socket)) + 9 <= 100
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:  # it can really be bound
        bound = place.socket.with_name(place.socket.name + ".12345678")
        probe.bind(str(bound))
        bound.unlink()


def test_the_runtime_folder_is_private_or_not_used(private_runtime: Path) -> None:
    xdg = private_runtime
    (xdg / "llmgrade").mkdir(parents=True)
    os.chmod(xdg / "llmgrade", 0o755)  # readable by others: never used
    chosen = runtime_dir({"XDG_RUNTIME_DIR": str(xdg)})
    assert chosen != xdg / "llmgrade"
    assert chosen is None or stat.S_IMODE(chosen.stat().st_mode) == 0o700
    os.chmod(xdg / "llmgrade", 0o700)
    assert runtime_dir({"XDG_RUNTIME_DIR": str(xdg)}) == xdg / "llmgrade"


def test_the_fingerprint_follows_the_grader_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "grader").mkdir()
    suite = tmp_path / "grader" / "test_x.py"
    suite.write_text("A = 1\n")
    monkeypatch.setattr(keep_warm, "GRADER_ROOT", tmp_path)
    before = keep_warm.code_fingerprint()
    assert keep_warm.code_fingerprint() == before
    suite.write_text("A = 12\n")
    assert keep_warm.code_fingerprint() != before


# --- a real keeper ---------------------------------------------------------------------------------------

@dataclass
class Kept:
    work: Path
    place: Place
    request: Request


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kept]:
    """A workspace checked once cold with ``--keep-warm``: its keeper holds a standby for ch04.GELU."""
    base = tmp_path_factory.mktemp("keep-warm")
    runtime = Path(tempfile.mkdtemp(prefix="kw-", dir="/tmp"))  # as the private_runtime fixture, module-wide
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(runtime))
        work = _work(base)
        place = Place.of(work)
        assert place is not None and place.lease.parent == runtime / "llmgrade"
        cold = check_run_kept_warm(work, "ch04.gelu", option=True)  # ids ignore case, as on the CLI
        assert [i.status for i in cold.items] == ["passed"]
        assert _wait(lambda: place.socket.exists() and _pid(place) is not None), "no keeper started"
        try:
            yield Kept(work, place, request_for(work, ["ch04.GELU"], None, 1.0))
        finally:
            _end(place)
            shutil.rmtree(runtime, ignore_errors=True)


def test_the_next_check_is_served_warm_and_grades_the_code_as_saved(kept: Kept) -> None:
    _edit(kept.work / "ch04.py", GELU_RIGHT, GELU_WRONG)  # saved after the standby got warm
    try:
        served = ask(kept.place, kept.request)
        assert served is not None, "the keeper did not serve a matching check"
        assert [i.status for i in served.items] == ["failed"]
    finally:
        _edit(kept.work / "ch04.py", GELU_WRONG, GELU_RIGHT)
    served = ask(kept.place, kept.request)  # the keeper made a new standby after the first check
    assert served is not None
    assert _summary(served) == _summary(check_run(kept.work, "ch04.GELU"))  # as a cold check says
    assert served.duration_s < 60  # the check's own time, not the time the standby waited


def test_a_connection_without_the_token_gets_no_answer(kept: Kept) -> None:
    pid = _pid(kept.place)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(kept.place.socket))
        forged = {"token": "0" * 32, "op": "check", "request": kept.request.to_dict()}
        conn.sendall(json.dumps(forged).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1024) == b""
    assert pid is not None and _alive(pid)
    served = ask(kept.place, kept.request)
    assert served is not None and [i.status for i in served.items] == ["passed"]


def test_any_other_check_ends_the_keeper_and_is_graded_cold(kept: Kept) -> None:
    pid = _pid(kept.place)
    assert pid is not None
    other = request_for(kept.work, ["ch04.LayerNorm"], None, 1.0)
    assert ask(kept.place, other) is None
    assert _wait(lambda: not _alive(pid), 60), "a keeper that did not match kept running"
    assert not kept.place.socket.exists() and not kept.place.lease.exists()
    again = check_run_kept_warm(kept.work, "ch04.LayerNorm")  # no keeper: cold, and none is started
    assert [i.status for i in again.items] == ["passed"] and not kept.place.lease.exists()


def test_a_keeper_ends_when_idle_when_asked_and_for_no_keep_warm(tmp_path: Path, private_runtime: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    work = _work(tmp_path)
    place = Place.of(work)
    assert place is not None and place.lease.parent == private_runtime / "llmgrade"
    request = request_for(work, ["ch04.GELU"], None, 1.0)
    try:
        start_keeper(place, request, ["ch04.GELU"], 0.03)  # 1.8 s without a request
        assert _wait(lambda: _pid(place) is not None)
        pid = _pid(place)
        assert pid is not None and _wait(lambda: not _alive(pid), 60), "an idle keeper kept running"
        assert not place.socket.exists()

        start_keeper(place, request, ["ch04.GELU"], 10)
        assert _wait(lambda: _pid(place) is not None and _pid(place) != pid)
        pid = _pid(place)
        assert pid is not None and stop(place)
        assert _wait(lambda: not _alive(pid), 60)

        start_keeper(place, request, ["ch04.GELU"], 10)
        assert _wait(lambda: _pid(place) is not None and _pid(place) != pid)
        pid = _pid(place)
        assert pid is not None
        monkeypatch.setenv("LLMGRADE_KEEP_WARM", "5")
        result = CliRunner().invoke(main, ["check", "ch04.GELU", "--submission", str(work), "--no-keep-warm"])
        assert result.exit_code == 0, result.output
        assert _wait(lambda: not _alive(pid), 60) and not place.lease.exists()
    finally:
        _end(place)


def test_a_check_in_a_script_leaves_no_keeper(tmp_path: Path, private_runtime: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMGRADE_KEEP_WARM")
    work = _work(tmp_path)
    place = Place.of(work)
    assert place is not None and place.lease.parent == private_runtime / "llmgrade"
    result = CliRunner().invoke(main, ["check", "ch04.GELU", "--submission", str(work)])
    assert result.exit_code == 0, result.output
    assert not place.lease.exists() and not place.socket.exists()


def test_the_request_holds_what_a_grade_reads_from_the_environment() -> None:
    environ = {"LLMGRADE_SANDBOX": "off", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "1", "LANG": "zh_CN.UTF-8",
               "LLMGRADE_KEEP_WARM": "5", "PWD": "/somewhere", "COLUMNS": "80"}
    assert keep_warm.grading_environment(environ) == (
        ("CUDA_VISIBLE_DEVICES", "1"), ("LANG", "zh_CN.UTF-8"), ("LLMGRADE_SANDBOX", "off"), ("OMP_NUM_THREADS", "1"))
    work = ROOT / "solutions"
    assert request_for(work, ["ch04.GELU"], None, 1.0, environ) != \
        request_for(work, ["ch04.GELU"], None, 1.0, {**environ, "LLMGRADE_SANDBOX": "on"})
    assert request_for(work, ["ch04.GELU"], None, 1.0, environ) == \
        request_for(work, ["ch04.GELU"], None, 1.0, {**environ, "PWD": "/elsewhere", "LLMGRADE_KEEP_WARM": "9"})
