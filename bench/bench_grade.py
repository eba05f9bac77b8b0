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

prints what the OS sandbox (issue 9) costs: the start of an empty process in the worker's sandbox
(bwrap, seccomp, cgroup) against a bare start, a worker's start-up to its first reply both ways, and
a full grade of solutions/ with and without the sandbox (LLMGRADE_SANDBOX=off).
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


def _best_start(sandboxed: bool, repeat: int) -> float:
    """Best wall time of starting ``python -c pass`` bare, or exactly as a worker is sandboxed."""
    from grader.sandbox import policy, seccomp
    from grader.sandbox.cgroup import TreeGroup

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.log"
        output.touch()
        for _ in range(repeat):
            start = time.perf_counter()
            cmd = [sys.executable, "-I", "-c", "pass"]
            group = None
            fd = None
            if sandboxed:
                fd = seccomp.filter_fd()
                mounts = policy.Mounts(Path(tmp), [policy.Bind(output, f"{policy.INSIDE}/out.log", True)])
                cmd = [*policy.bwrap_args(mounts, seccomp_fd=fd), *cmd]
                group = TreeGroup.create(1 << 30) if policy.probe().cgroup else None
                cmd = group.wrap(cmd) if group is not None else cmd
            subprocess.run(cmd, check=True, pass_fds=(fd,) if fd is not None else ())
            if fd is not None:
                os.close(fd)
            if group is not None:
                group.remove()
            times.append(time.perf_counter() - start)
    return min(times)


def _worker_start(submission: Path) -> float:
    from grader.sandbox.parent import Worker

    start = time.perf_counter()
    worker = Worker(submission)
    try:
        worker.request({"op": "ping"}, 120)
    finally:
        worker.close()
    return time.perf_counter() - start


def sandbox_cost(repeat: int) -> None:
    from grader.sandbox import policy

    isolation = policy.probe()
    if not isolation.sandboxed:
        sys.exit(f"the sandbox is not available here: {isolation.reason}")
    print(f"isolation: {isolation.describe()}")
    bare, boxed = _best_start(False, repeat), _best_start(True, repeat)
    print(f"start of an empty process: bare {bare:.3f} s, in the sandbox {boxed:.3f} s "
          f"(+{boxed - bare:.3f} s per worker start; best of {repeat})   target < 0.3 s")
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp) / "solutions"
        shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("__pycache__"))
        starts = {}
        for label, value in (("sandbox", ""), ("off", "off")):
            os.environ[policy.OFF_ENV] = value
            policy.probe.cache_clear()
            starts[label] = min(_worker_start(submission) for _ in range(repeat))
        os.environ.pop(policy.OFF_ENV)
        policy.probe.cache_clear()
        print(f"worker start to first reply (imports torch): without {starts['off']:.2f} s, "
              f"in the sandbox {starts['sandbox']:.2f} s")
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
