"""Benchmark of grading with per-item workers side by side (issue 19; not a test): prints figures.

    python bench/bench_parallel.py                      # this checkout, median of 5
    python bench/bench_parallel.py --repeat 3 --only full,check
    python bench/bench_parallel.py --python /other/checkout/.venv/bin/python   # another checkout: "before"

Each figure is the wall time of the real CLI as a subprocess (``python -m grader.cli``), the median of
``--repeat`` runs, with the load average printed beside it (run it on an idle machine):

- ``full``: ``llmgrade grade`` of solutions/, every item; first with an empty reference cache
  (``LLMGRADE_CACHE_DIR``, grader/checking/reference_cache.py), then with the cache it filled;
- ``check``: ``llmgrade check ch03.MultiHeadAttention --no-keep-warm`` (a cold check);
- ``item``: ``llmgrade grade ch04.GPTModel`` (one item that builds a whole model);
- ``hang``: a full grade of solutions/ whose ``MultiHeadAttention.forward`` never returns, and the
  same grade of solutions/ for comparison;
- ``class``: ``llmgrade grade-class`` of four copies of solutions/ with ``--jobs 1`` and ``--jobs 2``;
- ``plots``: a full grade of solutions/ whose modules import matplotlib.pyplot and pandas at the
  top, as the book's modules and readers' notebooks do (the fork server imports them once,
  grader/checking/preload.py), beside the same grade of solutions/; with the CPU seconds of each;
- ``stubs``: a full grade of exercises/ as generated (every item not started: every check fails).
Targets (issue 19, idle 2-core machine): full grade at most 10 s; cold check under 2 s; the hanging
submission within an honest full grade plus MultiHeadAttention's own limits; a class of four at
least 1.8x faster with ``--jobs 2`` than with ``--jobs 1`` (written when one grade used one core; now
that one grade already uses every core, ``class`` also prints how busy the cores were and the
shortest time the class's CPU seconds allow on this machine's cores). ``bench/bench_watch.py``
measures the kept-warm re-check (target under 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("full", "check", "item", "hang", "class", "plots", "stubs")


def load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of every core since boot (``/proc/stat``; None where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def timed(python: str, args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([python, "-m", "grader.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env})
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"llmgrade {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def median(label: str, repeat: int, run: Callable[[], float], target: str = "") -> float:
    times = []
    loads = []
    for _ in range(repeat):
        loads.append(load())
        times.append(run())
    value = statistics.median(times)
    print(f"{label}: {value:6.2f} s median of {repeat} (runs {', '.join(f'{t:.2f}' for t in times)}; "
          f"load average {', '.join(loads)}){'   ' + target if target else ''}", flush=True)
    return value


def hanging_copy(folder: Path) -> Path:
    target = folder / "hanging"
    shutil.copytree(ROOT / "solutions", target, ignore=shutil.ignore_patterns("__pycache__"))
    path = target / "ch03.py"
    path.write_text(path.read_text("utf-8") + "\n\ndef _hang(self, x):\n    while True:\n        pass\n\n\n"
                    "MultiHeadAttention.forward = _hang\n", "utf-8")
    return target


def plotting_copy(folder: Path) -> Path:
    """solutions/ with the book's plotting and data imports at the top of every module."""
    target = folder.parent / "plotting"
    shutil.copytree(folder, target)
    for path in target.glob("*.py"):
        text = path.read_text("utf-8")
        head, sep, rest = text.partition("from __future__ import annotations\n")
        imports = "import matplotlib.pyplot as plt  # noqa: F401\nimport pandas as pd  # noqa: F401\n"
        path.write_text(head + sep + imports + rest if sep else imports + text, "utf-8")
    return target


def with_cpu(run: Callable[[], float], ticks: list[tuple[int, int]]) -> Callable[[], float]:
    """``run``, also appending the (busy, total) clock ticks of every core during it to ``ticks``."""
    def measured() -> float:
        before = cpu_ticks()
        elapsed = run()
        after = cpu_ticks()
        if before and after:
            ticks.append((after[0] - before[0], after[1] - before[1]))
        return elapsed

    return measured


def cpu_figures(ticks: list[tuple[int, int]]) -> str:
    """The median CPU seconds of the runs and how busy the cores were (nothing without ``/proc/stat``)."""
    if not ticks:
        return ""
    used = statistics.median(b for b, _ in ticks) / os.sysconf("SC_CLK_TCK")
    share = sum(b for b, _ in ticks) / max(1, sum(t for _, t in ticks))
    cores = os.cpu_count() or 1
    return f"cores {share:.0%} busy, {used:.1f} CPU s (median), so at best {used / cores:.1f} s on {cores} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="the Python of the checkout to measure")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=",".join(CHECKS), help=f"some of {', '.join(CHECKS)}")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    python = args.python
    cwd = Path(subprocess.run([python, "-c", "import grader, pathlib; print(pathlib.Path(grader.__file__).parents[1])"],
                              capture_output=True, text=True, check=True).stdout.strip())
    print(f"checkout: {cwd}; machine: {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        submission = work / "solutions"
        shutil.copytree(ROOT / "solutions", submission, ignore=shutil.ignore_patterns("__pycache__"))
        common = ["--submission", str(submission), "--no-record"]
        cache = work / "cache"
        env = {"LLMGRADE_CACHE_DIR": str(cache), "LLMGRADE_KEEP_WARM": "0"}
        if "full" in chosen:
            def cold() -> float:
                shutil.rmtree(cache, ignore_errors=True)
                return timed(python, ["grade", *common], env, cwd)

            median("full grade, empty reference cache", args.repeat, cold)
            timed(python, ["grade", *common], env, cwd)  # fill the cache
            median("full grade", args.repeat, lambda: timed(python, ["grade", *common], env, cwd), "target <= 10 s")
        if "check" in chosen:
            median("cold check ch03.MultiHeadAttention", args.repeat,
                   lambda: timed(python, ["check", "ch03.MultiHeadAttention", "--submission", str(submission),
                                          "--no-keep-warm"], env, cwd), "target < 2 s")
        if "item" in chosen:
            median("grade ch04.GPTModel", args.repeat,
                   lambda: timed(python, ["grade", "ch04.GPTModel", *common], env, cwd))
        if "hang" in chosen:
            hanging = hanging_copy(work)
            honest = median("full grade (for the hanging one)", args.repeat,
                            lambda: timed(python, ["grade", *common], env, cwd))
            hung = median("full grade, MultiHeadAttention.forward never returns", args.repeat,
                          lambda: timed(python, ["grade", "--submission", str(hanging), "--no-record"], env, cwd))
            print(f"  the hang cost {hung - honest:.1f} s more than an honest full grade")
        if "class" in chosen:
            klass = work / "class"
            for n in range(4):
                shutil.copytree(submission, klass / f"student{n}")
            times: dict[int, list[float]] = {1: [], 2: []}
            ticks: dict[int, list[tuple[int, int]]] = {1: [], 2: []}
            for _ in range(max(1, args.repeat // 2)):
                for jobs in (1, 2):  # alternating, so that a drifting machine favours neither
                    db = work / f"gradebook-{jobs}.sqlite"
                    db.unlink(missing_ok=True)

                    def grade_class(jobs: int = jobs, db: Path = db) -> float:
                        return timed(python, ["grade-class", str(klass), "--jobs", str(jobs), "--db", str(db)], env, cwd)

                    times[jobs].append(with_cpu(grade_class, ticks[jobs])())
            for jobs in (1, 2):
                print(f"grade-class of four copies, --jobs {jobs}: {statistics.median(times[jobs]):6.2f} s median of "
                      f"{len(times[jobs])} (runs {', '.join(f'{t:.2f}' for t in times[jobs])}; load average {load()})"
                      f"; {cpu_figures(ticks[jobs])}", flush=True)
            ratio = statistics.median(times[1]) / statistics.median(times[2])
            print(f"  --jobs 2 is {ratio:.2f}x faster than --jobs 1   target >= 1.8x (when one grade used one core)")
        if "plots" in chosen:
            plotting = plotting_copy(submission)
            for label, folder in (("full grade", submission), ("full grade, matplotlib and pandas imported", plotting)):
                samples: list[tuple[int, int]] = []

                def grade(folder: Path = folder) -> float:
                    return timed(python, ["grade", "--submission", str(folder), "--no-record"], env, cwd)

                median(label, args.repeat, with_cpu(grade, samples))
                print(f"  {cpu_figures(samples)}", flush=True)
        if "stubs" in chosen:
            stubs = work / "exercises"
            shutil.copytree(ROOT / "exercises", stubs, ignore=shutil.ignore_patterns("__pycache__"))
            samples = []

            def grade_stubs() -> float:
                return timed(python, ["grade", "--submission", str(stubs), "--no-record"], env, cwd)

            median("full grade of the stubs", args.repeat, with_cpu(grade_stubs, samples))
            print(f"  {cpu_figures(samples)}", flush=True)

if __name__ == "__main__":
    main()
