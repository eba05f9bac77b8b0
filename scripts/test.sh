#!/usr/bin/env bash
# The project's test command (README): every test, with coverage of reference/ and the grader.
# Run it from the repository root with the project's venv active (or after `pip install -e ".[test]"`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONDONTWRITEBYTECODE=1
rm -f .coverage .coverage.* .coverage-solutions*
# The worker that runs solutions/ during the full-grade test records its coverage here.
export LLMGRADE_SOLUTIONS_COVERAGE="$PWD/.coverage-solutions"
# pytest-xdist runs the tests on every core (at least two workers: most slow tests wait on grading
# subprocesses or time limits). The workers are Python subprocesses, measured like the trusted pytest
# subprocess (pyproject.toml: patch = ["subprocess"]), and combined below. Tests that must not overlap
# share an xdist group (tests/conftest.py). LLMGRADE_TEST_WORKERS=0 runs them in this one process.
CORES=$(nproc 2>/dev/null || echo 2)
WORKERS=${LLMGRADE_TEST_WORKERS:-$(( CORES > 2 ? CORES : 2 ))}
"$PY" -m coverage run --source=reference,grader,reports -m pytest -n "$WORKERS" --dist loadgroup "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure, not a pass." >&2
    exit 1
fi
"$PY" -m coverage combine -q >/dev/null 2>&1 || true
rm -f .coverage.*  # what combine could not read: files of subprocesses killed on purpose by the tests
echo
echo "Coverage of reference/:"
"$PY" -m coverage report --include='reference/*' --skip-empty | tail -n 15
if ls .coverage-solutions.* >/dev/null 2>&1; then
    echo "Coverage of solutions/ by the hidden suites (measured in the worker while grading them):"
    COVERAGE_FILE=.coverage-solutions "$PY" -m coverage combine -q .coverage-solutions.* >/dev/null
    # --omit: the package file the stage adds, which solutions/ does not have
    COVERAGE_FILE=.coverage-solutions "$PY" -m coverage report --skip-empty --omit='*/__init__.py' | tail -n 14
fi
# The hidden suites run in the trusted pytest subprocess (measured there, see pyproject.toml).
echo "Coverage of the hidden suites (grader/suites/):"
"$PY" -m coverage report --include='grader/suites/*' --skip-empty | tail -n 3
echo "Coverage of grader/ and reports/ (trusted side, hidden suites included):"
"$PY" -m coverage report --include='grader/*,reports/*' --skip-empty | tail -n 3
if [ "$rc" -eq 0 ]; then
    "$PY" -m mypy || rc=1
fi
exit "$rc"
