"""How many graded mistakes are *named*: the failure says what the mistake is, not only where the
output differs (issue 21).

    python bench/bench_named_rate.py                  # the unanticipated set (tests/grader/variants/unanticipated.py)
    python bench/bench_named_rate.py --all            # every buggy variant of tests/grader/variants/
    python bench/bench_named_rate.py --only u-ff-no-expansion --verbose

Grades the model answers with each variant applied (packed into shared runs like
tests/grader/test_variants.py) and prints, per variant, whether its item failed and whether a failed
check names the mistake: the variant's hand-written ``diagnosis`` or, for a variant that has none,
the reference mutant it expects (``mutant``: operator and a piece of the reference line). Then the
named rate, and the time the failing items' checks took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.grader.test_variants import _verdicts, all_variants, batches  # noqa: E402
from tests.grader.variants import named  # noqa: E402
from tests.grader.variants.unanticipated import VARIANTS as UNANTICIPATED  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every buggy variant, not only the unanticipated set")
    parser.add_argument("--only", nargs="*", default=[], help="variant ids")
    parser.add_argument("--verbose", action="store_true", help="print each failed check's message")
    args = parser.parse_args()
    chosen = [v for v in (all_variants() if args.all else UNANTICIPATED) if not v.passes]
    if args.only:
        chosen = [v for v in chosen if v.id in args.only]
    began = time.perf_counter()
    verdicts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, batch in enumerate(batches(chosen)):
            folder = Path(tmp) / f"batch-{n}"
            folder.mkdir()
            verdicts.update(_verdicts(batch, folder))
    count = caught = 0
    seconds: list[float] = []
    slowest: list[tuple[float, str]] = []
    for variant in chosen:
        result = verdicts[variant.id]
        is_named = named(variant, result)
        caught += result.status == "failed"
        count += is_named
        failed = [c for c in result.checks if c.status == "failed"]
        seconds.extend(c.duration_s for c in failed)
        slowest.extend((c.duration_s, f"{variant.id}: {c.name}") for c in failed)
        names = {c.diagnosis for c in failed if c.diagnosis} or {"-"}
        print(f"{'NAMED ' if is_named else 'unnamed'} {result.status:8} {variant.id:42} "
              f"diagnosis={','.join(sorted(names))}")
        if args.verbose or not is_named:
            for check in failed[:2]:
                print(f"          {check.name}: {check.message[:400]}")
    total = len(chosen)
    print(f"\ncaught {caught}/{total}; named {count}/{total} ({100.0 * count / max(total, 1):.0f}%)")
    if seconds:
        print(f"failed checks: {len(seconds)}, mean {sum(seconds) / len(seconds):.3f} s, "
              f"max {max(seconds):.3f} s; wall {time.perf_counter() - began:.0f} s")
        print("slowest failed checks: " + "; ".join(f"{name} {s:.2f} s" for s, name in sorted(slowest)[-3:]))


if __name__ == "__main__":
    main()
