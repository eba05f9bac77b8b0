"""What the answer-key tripwire (grader/sandbox/key_watch.py) costs the worker: installing it, and
importing a whole submission (solutions/) with and without it, each in a fresh process after torch
is imported, as in the worker. Prints figures; asserts nothing.

    python bench/bench_key_watch.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, os, sys, tempfile, time
sys.path.insert(0, {root!r})
import torch  # the worker imports torch before the hook is installed
from grader.sandbox import child, key_watch
watch = {watch}
read, write = os.pipe()
began = time.perf_counter()
if watch:
    child._watch_answer_key(write, child.Path({submission!r}), None)
installed = time.perf_counter() - began
began = time.perf_counter()
report = child.Submission(child.Path({submission!r}), child.Path(tempfile.mkdtemp())).load_all()
loaded = time.perf_counter() - began
assert not report["modules"], report
print(json.dumps({{"install_s": installed, "load_s": loaded}}))
"""


def measure(watch: bool) -> dict[str, float]:
    code = PROBE.format(root=str(ROOT), watch=watch, submission=str(ROOT / "solutions"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = {watch: [measure(watch) for _ in range(args.repeat)] for watch in (False, True)}
    install = statistics.median(r["install_s"] for r in runs[True])
    plain = statistics.median(r["load_s"] for r in runs[False])
    watched = statistics.median(r["load_s"] for r in runs[True])
    print(f"install the tripwire:              {install * 1000:7.1f} ms (median of {args.repeat})")
    print(f"import solutions/ without it:      {plain * 1000:7.1f} ms")
    print(f"import solutions/ with it:         {watched * 1000:7.1f} ms ({(watched / plain - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    main()
