#!/usr/bin/env bash
# The project's test command (README): every test, then mypy.
#   bash scripts/test.sh [--coverage] [pytest arguments...]
# --coverage also measures and reports coverage of reference/, of solutions/ by the hidden suites, and
# of the grader (the trusted pytest subprocesses included). It is not the default: tracing the
# trusted side of every grading run costs about a fifth of the suite's CPU (measured on
# tests/grader/test_check_equals_grade.py: 16-28 % more CPU seconds), and the suite must stay under
# 20 minutes on two cores.
# Run it from the repository root with the project's venv active (or after `pip install -e ".[test]"`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONDONTWRITEBYTECODE=1
COVERAGE=0
if [ "${1:-}" = "--coverage" ]; then
    COVERAGE=1
    shift
fi
# pytest-xdist runs the tests on every core (at least two workers; the suite keeps two cores busy,
# and three workers on two cores were no faster and made timing-sensitive tests flaky). Tests that
# must not overlap share an xdist group (tests/conftest.py). LLMGRADE_TEST_WORKERS=0 runs them in this
# one process. With --coverage the workers are Python subprocesses, measured like the trusted pytest
# subprocess (pyproject.toml: patch = ["subprocess"]), and combined below.
CORES=$(nproc 2>/dev/null || echo 2)
WORKERS=${LLMGRADE_TEST_WORKERS:-$(( CORES > 2 ? CORES : 2 ))}
RUN=("$PY" -m pytest)
if [ "$COVERAGE" -eq 1 ]; then
    rm -f .coverage .coverage.* .coverage-solutions*
    # The worker that runs solutions/ during the full-grade test records its coverage here.
    export LLMGRADE_SOLUTIONS_COVERAGE="$PWD/.coverage-solutions"
    RUN=("$PY" -m coverage run --source=reference,grader,reports -m pytest)
fi
"${RUN[@]}" -n "$WORKERS" --dist loadgroup "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure, not a pass." >&2
    exit 1
fi
if [ "$COVERAGE" -eq 1 ]; then
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
fi
if [ "$rc" -eq 0 ]; then
    "$PY" -m mypy || rc=1
fi
exit "$rc"
