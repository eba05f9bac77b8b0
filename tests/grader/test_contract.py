"""The run <-> pytest contract (grader/runner/contract.py): the spec, the signature, progress, and
the Collector's methods. The end-to-end hop is exercised by every grading test; these try to break
its pieces one at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.catalog import BY_ID
from grader.checking.plugin import Collector
from grader.runner import contract
from grader.runner.contract import RESULTS_FORMAT, SPEC_OPTION, ProgressCounter, RunSpec

ROOT = Path(__file__).resolve().parents[2]


def spec(tmp_path: Path, **changes: object) -> RunSpec:
    fields: dict[str, object] = dict(submission=str(tmp_path / "sub"), results=str(tmp_path / "checks.json"),
                                     items=("ch03.MultiHeadAttention", "ch04.GELU"), device="cpu",
                                     time_scale=2.5, key_fd=7, progress_fd=8, gate_fds=(9, 10))
    fields.update(changes)
    return RunSpec(**fields)  # type: ignore[arg-type]


def test_spec_round_trips_through_one_command_line_value(tmp_path: Path) -> None:
    original = spec(tmp_path)
    command = contract.pytest_command("python", ["suite.py"], original)
    assert command[:4] == ["python", "-P", "-m", "pytest"]
    (arg,) = [a for a in command if a.startswith(SPEC_OPTION + "=")]
    assert RunSpec.from_arg(arg.split("=", 1)[1]) == original
    plain = spec(tmp_path, gate_fds=None)
    assert RunSpec.from_arg(plain.to_arg()) == plain
    # our ini, rootdir and plugins, never the student's configuration
    assert command[command.index("-c") + 1] == str(contract.SUITES_DIR / "pytest.ini")
    assert [command[i + 1] for i, a in enumerate(command) if a == "-p"] == [
        "no:cacheprovider", "grader.checking.plugin", "grader.checking.fixtures", "grader.checking.parallel"]
    # Python's tracebacks in the log: pytest's long form parsed a whole source file again for every
    # frame of every failed check (14 of the 26 CPU seconds of a full grade of the stubs)
    assert "--tb=native" in command


@pytest.mark.parametrize("text, complaint", [
    ("not json", "not JSON"),
    ("[1, 2]", "not a llmgrade.run/1 object"),
    (json.dumps({"format": "llmgrade.run/0", "submission": "s", "results": "r"}), "not a llmgrade.run/1"),
    (json.dumps({"format": "llmgrade.run/1", "results": "r"}), "missing or malformed field"),
    (json.dumps({"format": "llmgrade.run/1", "submission": "s", "results": "r", "key_fd": "x"}),
     "missing or malformed field"),
    (json.dumps({"format": "llmgrade.run/1", "submission": "s", "results": "r", "gate_fds": [3]}),
     "missing or malformed field"),
])
def test_a_malformed_spec_is_refused_with_a_reason(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RunSpec.from_arg(text)


def test_pytest_refuses_a_malformed_spec_as_a_usage_error(tmp_path: Path) -> None:
    env = contract.pytest_environment({**os.environ, "PYTHONPATH": str(ROOT)})
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "grader.checking.plugin", "--co", "-q",
                          "--rootdir", str(tmp_path), "-c", os.devnull, f"{SPEC_OPTION}={{broken"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 4, out.stdout + out.stderr  # pytest's usage error: run.py reports it
    assert "is not JSON" in out.stderr


def test_environment_drops_addopts_and_caps_threads(tmp_path: Path) -> None:
    env = contract.pytest_environment({"PYTEST_ADDOPTS": "-p no:grader.checking.plugin", "HOME": "/h"}, threads=3,
                                      tmpdir=tmp_path)
    assert "PYTEST_ADDOPTS" not in env and env["HOME"] == "/h"
    assert env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == env["PYTHONSAFEPATH"] == "1"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and env["TMPDIR"] == str(tmp_path)
    assert "OMP_NUM_THREADS" not in contract.pytest_environment({})


def test_only_the_key_holder_can_sign(tmp_path: Path) -> None:
    key = contract.new_key()
    assert len(key) == contract.KEY_BYTES
    path = tmp_path / "out" / "checks.json"
    payload = {"format": RESULTS_FORMAT, "checks": [{"item": "ch04.GELU", "status": "failed"}]}
    contract.write_signed(path, key, payload)
    assert contract.read_signed(path, key) == payload
    assert contract.read_signed(path, contract.new_key()) is None  # another key
    assert contract.read_signed(path, b"") is None

    document = json.loads(path.read_text("utf-8"))
    document["payload"]["checks"][0]["status"] = "passed"  # a forged outcome under a real signature
    path.write_text(json.dumps(document), "utf-8")
    assert contract.read_signed(path, key) is None

    wrong_format = {"format": "llmgrade.checks/0", "checks": []}
    path.write_text(json.dumps({"payload": wrong_format, "signature": contract.sign(key, wrong_format)}), "utf-8")
    assert contract.read_signed(path, key) is None
    for junk in ("", "[]", '{"payload": 1, "signature": "x"}', '{"payload": {}}'):
        path.write_text(junk, "utf-8")
        assert contract.read_signed(path, key) is None
    assert contract.read_signed(tmp_path / "missing.json", key) is None


def test_the_key_crosses_on_a_pipe_read_once() -> None:
    key = contract.new_key()
    fd = contract.hand_over_key(key)
    assert contract.read_key(fd) == key
    with pytest.raises(OSError):
        os.fstat(fd)  # closed after reading: nothing started later inherits it
    assert contract.read_key(-1) == b""


def test_progress_lines_count_done_checks() -> None:
    counter = ProgressCounter()
    for line in [contract.total_line(3), contract.done_line("passed", "t.py::a"), "noise",
                 contract.done_line("failed", "t.py::b"), "total x"]:
        counter.feed(line)
    assert (counter.done, counter.total) == (2, 3)


def test_collector_records_load_errors_and_skips_those_items(tmp_path: Path) -> None:
    collector = Collector(spec(tmp_path, key_fd=-1, progress_fd=-1))
    assert collector.wanted == {"ch03.MultiHeadAttention", "ch04.GELU"}
    broken = {"kind": "syntax_error", "file": "ch03.py", "message": "invalid syntax"}
    collector.record_load_errors({"ch03": broken}, {"ch04.GELU": ["GELU"]})
    assert collector.load_errors == {"modules": {"ch03": broken}, "missing": {"ch04.GELU": ["GELU"]}}
    ch03 = {item.id for item in BY_ID.values() if item.module == "ch03"}
    assert collector.skipped_items == ch03 | {"ch04.GELU"}
    collector.record_load_errors({"*": broken}, {})
    assert collector.skipped_items == set(BY_ID)
    collector.record_environment("cpu", "2.13.0", isolation="none", isolation_reason="no bwrap")
    assert collector.environment == {"device": "cpu", "torch_version": "2.13.0", "isolation": "none",
                                     "isolation_reason": "no bwrap"}


def test_the_device_is_resolved_once_with_the_documented_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device`` wins over ``LLMGRADE_DEVICE``, which wins over auto; the book's code is told the result."""
    from grader.checking.fixtures import resolve_device

    monkeypatch.setenv("LLMGRADE_DEVICE", "nosuchdevice")
    assert resolve_device("cpu") == "cpu"
    assert os.environ["LLMGRADE_DEVICE"] == "cpu"  # reference.device.get_device() now agrees
    monkeypatch.setenv("LLMGRADE_DEVICE", "nosuchdevice")
    with pytest.raises(pytest.UsageError, match="nosuchdevice"):
        resolve_device(contract.AUTO_DEVICE)
    monkeypatch.setenv("LLMGRADE_DEVICE", "cpu")
    assert resolve_device(contract.AUTO_DEVICE) == "cpu"
    monkeypatch.delenv("LLMGRADE_DEVICE")
    import torch

    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device(contract.AUTO_DEVICE) == expected
