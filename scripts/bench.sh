#!/usr/bin/env bash
# Runs the benchmark of issue 6 on both sides: Python's multiprocessing (scripts/bench.py, its own
# table), then `cargo bench --bench bench`, whose table then has the Python figures in a column.
# Arguments go to the Rust bench (measurement filters, see benches/bench.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

python_figures=$(mktemp)
trap 'rm -f "$python_figures"' EXIT

echo "runtime at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- process-runtime process-macros 2>/dev/null || echo ', with uncommitted changes')"
python3 scripts/bench.py --tsv "$python_figures"
echo
BENCH_PYTHON="$python_figures" cargo bench --bench bench -- "$@"
