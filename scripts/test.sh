#!/usr/bin/env bash
# The project's test command (README): every test, with coverage of reference/ and the grader.
# Run it from the repository root with the project's venv active (or after `pip install -e ".[test]"`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONDONTWRITEBYTECODE=1
rm -f .coverage .coverage.*
"$PY" -m coverage run --source=reference,grader,reports -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure, not a pass." >&2
    exit 1
fi
echo
echo "Coverage of reference/:"
"$PY" -m coverage report --include='reference/*' --skip-empty | tail -n 15
echo "Coverage of grader/ and reports/ (trusted side):"
"$PY" -m coverage report --include='grader/*,reports/*' --omit='grader/suites/*' --skip-empty | tail -n 3
if [ "$rc" -eq 0 ]; then
    "$PY" -m mypy || rc=1
fi
exit "$rc"
