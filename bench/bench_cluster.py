"""Benchmark of class grading on a Dask cluster against the local pool.

    python bench/bench_cluster.py --copies 8                 # full grades: --jobs 1, --jobs 2, --cluster local:2
    python bench/bench_cluster.py --copies 8 --items ch04    # a quicker run on one chapter

Prints the wall time of each way on the same copies of solutions/, the speed-up of ``--cluster
local:2`` over ``--jobs 1`` and ``--jobs 2``, and Dask's overhead per submission: the cluster's wall
time minus the local pool's with the same parallelism, divided by the number of submissions
(start-up of the LocalCluster included, so it is an upper bound). Target: under 0.5 s a submission.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.classroom.grade_class import grade_class  # noqa: E402


def timed(subs: Path, db: Path, items: list[str], **how: object) -> float:
    began = time.perf_counter()
    summary = grade_class(subs, db, force=True, progress=None, items=items, **how)  # type: ignore[arg-type]
    seconds = time.perf_counter() - began
    if summary.broken or summary.lost:
        print(f"warning: not graded with {how}: {summary.broken + summary.lost}", file=sys.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--items", nargs="*", default=[], help="item ids or chapters (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        for k in range(args.copies):
            shutil.copytree(ROOT / "solutions", subs / f"copy{k:03d}", ignore=shutil.ignore_patterns("__pycache__"))
        jobs1 = timed(subs, Path(tmp) / "j1.sqlite", args.items, jobs=1)
        jobs2 = timed(subs, Path(tmp) / "j2.sqlite", args.items, jobs=2)
        dask2 = timed(subs, Path(tmp) / "d2.sqlite", args.items, cluster="local:2")
    what = ", ".join(args.items) or "all items"
    print(f"{args.copies} copies of solutions/ ({what}):")
    print(f"  --jobs 1:          {jobs1:7.1f} s")
    print(f"  --jobs 2:          {jobs2:7.1f} s")
    print(f"  --cluster local:2: {dask2:7.1f} s")
    print(f"speed-up of --cluster local:2: {jobs1 / dask2:.2f}x over --jobs 1, {jobs2 / dask2:.2f}x over --jobs 2")
    print(f"Dask overhead per submission (vs --jobs 2, cluster start included): "
          f"{(dask2 - jobs2) / args.copies:.2f} s")


if __name__ == "__main__":
    main()
