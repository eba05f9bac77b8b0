"""Benchmark of grading (not a test): prints figures for the issue notes.

    python bench/bench_grade.py                # full grade of solutions/, per chapter, one check
    python bench/bench_grade.py --check ch04.GPTModel

Prints:
- wall time of `llmgrade grade` on solutions/ for every item, and per chapter (each chapter graded
  alone, so each includes the start-up of pytest and of the worker);
- the latency of `llmgrade check ITEM` (a save-and-check loop);
- the ratio of grading time to the time the same recipe calls take when run directly on the
  reference in one process (every call the suites made to the student's side is recorded, then
  replayed in-process against reference/).
Targets (issue 4): full grading under 30 s, one check under 3 s, on a 2-core CPU machine.

    python bench/bench_grade.py --sandbox-cost

prints what the OS sandbox (issue 9) costs: a run's first worker (the fork server started in bwrap,
seccomp and a cgroup, importing torch) and each further worker forked from it (its own namespaces,
fresh /tmp, item view) against the same without the sandbox, and a full grade of solutions/ with and
without the sandbox (LLMGRADE_SANDBOX=off).
Targets: under 0.3 s per worker start, under 10% on a full grade.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.catalog import MODULES  # noqa: E402
from grader.results import GradeRun  # noqa: E402


def cli(*args: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"llmgrade {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def replay(folder: Path) -> tuple[int, float]:
    """Run every recorded recipe call in this process against reference/; (calls, seconds)."""
    from grader.sandbox import protocol
    from grader.recipes import get, run_reference

    calls = [protocol.decode_request(path.read_bytes()) for path in sorted(folder.glob("call-*.pt"))]
    for call in calls[:3]:  # warm up imports and first-use costs, as the worker does
        get(call["recipe"])
    start = time.perf_counter()
    for call in calls:
        try:
            run_reference(call["recipe"], "cpu", **call["inputs"])
        except Exception:  # noqa: BLE001 - a recipe that expects a student failure still costs its time
            pass
    return len(calls), time.perf_counter() - start


def _server_and_worker(submission: Path) -> tuple[float, float]:
    """Seconds to a run's first worker answering (the fork server's start, which imports torch,
    included), then seconds for one more worker forked from that warm server to answer."""
    from grader.sandbox.parent import ForkServer, Worker

    start = time.perf_counter()
    server = ForkServer(submission, workers=1)
    try:
        first = Worker(submission, server=server, item="ch03.MultiHeadAttention")
        first.start()
        first.ping(120)
        cold = time.perf_counter() - start
        first.close()
        start = time.perf_counter()
        second = Worker(submission, server=server, item="ch04.GPTModel")
        second.start()
        second.ping(120)
        warm = time.perf_counter() - start
        second.close()
    finally:
        server.close()
    return cold, warm


def sandbox_cost(repeat: int) -> None:
    from grader.sandbox import policy

    isolation = policy.probe()
    if not isolation.sandboxed:
        sys.exit(f"the sandbox is not available here: {isolation.reason}")
    print(f"isolation: {isolation.describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp) / "solutions"
        shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("__pycache__"))
        starts = {}
        for label, value in (("sandbox", ""), ("off", "off")):
            os.environ[policy.OFF_ENV] = value
            policy.probe.cache_clear()
            runs = [_server_and_worker(submission) for _ in range(repeat)]
            starts[label] = (min(r[0] for r in runs), min(r[1] for r in runs))
        os.environ.pop(policy.OFF_ENV)
        policy.probe.cache_clear()
        print(f"a run's first worker answering (the fork server imports torch): without the sandbox "
              f"{starts['off'][0]:.2f} s, in it {starts['sandbox'][0]:.2f} s (best of {repeat})")
        print(f"each further worker, forked with its own namespaces and view: without the sandbox "
              f"{starts['off'][1]:.3f} s, in it {starts['sandbox'][1]:.3f} s   target < 0.3 s")
        times = {}
        for label, value in (("off", "off"), ("sandbox", "")):
            out = Path(tmp) / f"{label}.json"
            times[label] = cli("grade", "--submission", str(submission), "--no-record", "--json", str(out),
                               env={policy.OFF_ENV: value})
            run = GradeRun.read(out)
            if run.status != "complete" or run.score != run.max_score:
                print(f"  the full grade {'without' if label == 'off' else 'with'} the sandbox did not "
                      f"complete ({run.status}, {run.score}/{run.max_score}): the machine is too loaded "
                      "to compare (see /proc/loadavg)")
        off, on = times["off"], times["sandbox"]
        print(f"full grade of solutions/: without the sandbox {off:.1f} s, with it {on:.1f} s "
              f"({(on - off) / off * 100:+.1f}%)   target < +10%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", default="ch03.MultiHeadAttention", help="item for the check latency")
    parser.add_argument("--repeat", type=int, default=3, help="check runs to average")
    parser.add_argument("--sandbox-cost", action="store_true", help="only what the OS sandbox costs")
    args = parser.parse_args()
    if args.sandbox_cost:
        sandbox_cost(max(args.repeat, 5))
        return
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp) / "solutions"
        shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("__pycache__"))
        common = ["--submission", str(submission), "--no-record"]
        record = Path(tmp) / "calls"
        full = cli("grade", *common, env={"LLMGRADE_RECORD_CALLS": str(record)})
        print(f"llmgrade grade (all items, solutions/): {full:6.2f} s   target < 30 s")
        for module in MODULES:
            print(f"  llmgrade grade {module:<11} {cli('grade', module, *common):6.2f} s")
        checks = [cli("check", args.check, "--submission", str(submission)) for _ in range(args.repeat)]
        print(f"llmgrade check {args.check}: {min(checks):.2f} s best, "
              f"{sum(checks) / len(checks):.2f} s mean of {len(checks)}   target < 3 s")
        calls, direct = replay(record)
        print(f"the same {calls} recipe calls run directly on reference/ in one process: {direct:.2f} s")
        print(f"ratio of full grading time to direct computation: {full / max(direct, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
