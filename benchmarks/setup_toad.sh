#!/usr/bin/env bash
# Create benchmarks/.work/venv-toad with toad 0.1.7, the WoE/IV peer of
# bench_risk.py. It lives in its own environment so that toad's pins never
# constrain relmap's. toad 0.1.7 declares no dependencies, so the script
# installs the libraries it imports. A second call with the same
# requirements does nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.work/venv-toad"
stamp="$venv/.toad-installed"
python="${PYTHON:-python3}"

requirements=("toad==0.1.7" "pandas" "numpy" "scipy" "scikit-learn" "pyarrow")
wanted="$(printf '%s\n' "${requirements[@]}")"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
mkdir -p "$here/.work"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
"$venv/bin/python" -m pip install --quiet "${requirements[@]}"
echo "$wanted" > "$stamp"
