"""Benchmark of the save-and-check loop (not a test): prints figures for the issue notes.

    python bench/bench_watch.py                          # ch03.MultiHeadAttention, best of 3
    python bench/bench_watch.py --item ch04.GELU --repeats 3 --full-repeats 1

Prints, each the best of ``--repeats`` (``--full-repeats`` for the full grade):
- cold `llmgrade check ITEM`: a new CLI process, pytest and worker started from nothing;
- `llmgrade check ITEM` again after a save, served by the keeper the previous check left
  (grader/runner/keep_warm.py): a new CLI process each time, ``--pause`` seconds after the previous
  check (a student reading its output), so that the keeper's next standby is warm;
- the floor of a cold check: two `python -c "import torch"` side by side (the trusted process and
  the worker each import torch before any check can run);
- warm re-check after a save (what `llmgrade watch` does): a standby (pytest started, suites collected,
  reference imported, worker started) is made ready, then the file is saved; the time runs from the
  save to the result, so it includes importing the student's code and every check of ITEM;
- `llmgrade grade` of every item of solutions/.
Targets (issue 12): warm re-check under 1 s for one ch03 item, cold check under 2 s, on 2 CPU cores.
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

from grader.runner import keep_warm  # noqa: E402
from grader.runner.watch import Standby  # noqa: E402


def cold_check(work: Path, item: str, *options: str, keep_warm: str = "0") -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "grader.cli", "check", item, "--submission", str(work), *options],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "LLMGRADE_KEEP_WARM": keep_warm})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"llmgrade check {item} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def kept_warm_checks(work: Path, item: str, repeats: int, pause_s: float) -> list[float]:
    """The first check is cold and leaves a keeper; each timed one is a save, then `llmgrade check`."""
    runtime = Path(tempfile.mkdtemp(prefix="bench-keep-warm-"))
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    module = work / f"{item.split('.')[0]}.py"
    place = keep_warm.Place.of(work.resolve())
    try:
        cold_check(work, item, "--keep-warm")
        times = []
        for _ in range(repeats):
            time.sleep(pause_s)
            module.write_text(module.read_text("utf-8"), "utf-8")  # the save
            times.append(cold_check(work, item, keep_warm="10"))
        return times
    finally:
        if place is not None:
            keep_warm.stop(place)
        shutil.rmtree(runtime, ignore_errors=True)


def torch_import_pair() -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", "import torch"]) for _ in range(2)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


def warm_recheck(work: Path, item: str) -> float:
    standby = Standby(work, [item], None, 1.0)
    if not standby.wait_ready(300):
        sys.exit("the standby did not get ready")
    module = work / f"{item.split('.')[0]}.py"
    module.write_text(module.read_text("utf-8"), "utf-8")  # the save
    start = time.perf_counter()
    run = standby.go()
    elapsed = time.perf_counter() - start
    if run.items[0].status != "passed":
        sys.exit(f"{item} did not pass on solutions/: {run.items[0].message}")
    return elapsed


def full_grade(work: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader.cli", "grade", "--submission", str(work), "--no-record"],
                   cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--item", default="ch03.MultiHeadAttention")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-repeats", type=int, default=3)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between kept-warm checks")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-watch-")) / "work"
    shutil.copytree(ROOT / "solutions", work, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        cold = [cold_check(work, args.item) for _ in range(args.repeats)]
        print(f"cold `llmgrade check {args.item}`: best {min(cold):.2f} s of {len(cold)} "
              f"({', '.join(f'{c:.2f}' for c in cold)})", flush=True)
        kept = kept_warm_checks(work, args.item, args.repeats, args.pause)
        print(f"`llmgrade check {args.item}` again after a save, kept warm: best {min(kept):.2f} s of {len(kept)} "
              f"({', '.join(f'{k:.2f}' for k in kept)})", flush=True)
        pair = [torch_import_pair() for _ in range(args.repeats)]
        print(f"floor of a cold check, two `import torch` side by side: best {min(pair):.2f} s of {len(pair)} "
              f"({', '.join(f'{p:.2f}' for p in pair)})", flush=True)
        warm = [warm_recheck(work, args.item) for _ in range(args.repeats)]
        print(f"warm re-check after a save ({args.item}): best {min(warm):.2f} s of {len(warm)} "
              f"({', '.join(f'{w:.2f}' for w in warm)})", flush=True)
        if args.full_repeats:
            full = [full_grade(work) for _ in range(args.full_repeats)]
            print(f"full `llmgrade grade` of solutions/: best {min(full):.1f} s of {len(full)} "
                  f"({', '.join(f'{f:.1f}' for f in full)})", flush=True)
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
