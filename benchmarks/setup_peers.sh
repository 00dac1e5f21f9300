#!/usr/bin/env bash
# Create benchmarks/.venv-peers with the peer tools that benchmarks compare
# relmap against. They live in their own environment so their pins never
# constrain relmap's. Idempotent: a second call only checks the stamp file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
stamp="$venv/.peers-installed"
python="${PYTHON:-python3}"

if [ -f "$stamp" ]; then
  exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# ydata-profiling: the profiling peer; duckdb: its own SUMMARIZE as the engine's limit.
"$venv/bin/python" -m pip install --quiet "ydata-profiling==4.18.4" "duckdb==1.5.6" "pyarrow==26.0.1" "setuptools<81"
touch "$stamp"
