#!/usr/bin/env bash
# Create benchmarks/.venv-peers with the peer tools that benchmarks compare
# relmap against. They live in their own environment so their pins never
# constrain relmap's.
#
# DuckDB and pyarrow take relmap's own pins from pyproject.toml, so DuckDB's
# SUMMARIZE runs on the same engine version as relmap. The stamp file stores
# the installed requirements: a second call with unchanged pins does nothing,
# and changed pins are installed into the existing environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv-peers"
stamp="$venv/.peers-installed"
python="${PYTHON:-python3}"

pin() {
  # Print the pin of package $1 in pyproject.toml without quotes, for example duckdb==1.5.6.
  local found
  found="$(grep -o "\"$1==[^\"]*\"" "$root/pyproject.toml" | head -1 | tr -d '"')"
  if [ -z "$found" ]; then
    echo "no pin for $1 found in $root/pyproject.toml" >&2
    exit 2
  fi
  echo "$found"
}

# ydata-profiling: the profiling peer; duckdb: its own SUMMARIZE as the engine's limit.
requirements=("ydata-profiling==4.18.4" "$(pin duckdb)" "$(pin pyarrow)" "setuptools<81")
wanted="$(printf '%s\n' "${requirements[@]}")"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
"$venv/bin/python" -m pip install --quiet "${requirements[@]}"
echo "$wanted" > "$stamp"
