#!/usr/bin/env bash
# Run every benchmark of docs/benchmarks.md and print one table.
#
#   benchmarks/run_all.sh
#
# Steps: create the peers' environment (setup_peers.sh) and generate the data
# into benchmarks/.work/. Then profile the 1M-row table with relmap and its
# peers (3 fresh processes each, interleaved) and the 10M-row table with
# relmap alone. Last, ingest the 1M-row GBK CSV and print the results with the
# targets. Each measurement runs alone, one after the other.
#
# Environment (all optional):
#   RELMAP_PYTHON   interpreter with relmap installed (default .venv/bin/python)
#   WORK            folder for data and results (default benchmarks/.work)
#   ROWS_SMALL      rows of the peer comparison (default 1000000)
#   ROWS_LARGE      rows of the relmap-only profile (default 10000000; 0 skips it)
#   ROWS_INGEST     rows of the GBK CSV (default 1000000)
#   REPEAT          fresh processes per measurement (default 3; the large profile runs once)
#   PEERS           1 (default) to set up and run the peers, 0 to measure relmap and DuckDB SUMMARIZE only
#   QUIET_WAIT      seconds to wait at most before each measurement for the machine to fall idle (default 600)
#   RETRIES         repeats of a measurement that other processes disturbed (default 2)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
python="${RELMAP_PYTHON:-$root/.venv/bin/python}"
work="${WORK:-$here/.work}"
rows_small="${ROWS_SMALL:-1000000}"
rows_large="${ROWS_LARGE:-10000000}"
rows_ingest="${ROWS_INGEST:-1000000}"
repeat="${REPEAT:-3}"
peers="${PEERS:-1}"
quiet=(--quiet-wait "${QUIET_WAIT:-600}" --retries "${RETRIES:-2}")

if [ ! -x "$python" ]; then
  echo "relmap interpreter not found: $python; run 'make install' or set RELMAP_PYTHON" >&2
  exit 2
fi
mkdir -p "$work"

if [ "$peers" = 1 ]; then
  "$here/setup_peers.sh"
  peer_python="$here/.venv-peers/bin/python"
  tools="relmap,relmap_report,duckdb_summarize,duckdb_aggregate,ydata,ydata_report"
else
  # Without the peers' environment, DuckDB SUMMARIZE runs under relmap's own DuckDB.
  peer_python="$python"
  tools="relmap,relmap_report,duckdb_summarize,duckdb_aggregate"
fi

results=()
"$python" "$here/bench_profiling.py" --rows "$rows_small" --repeat "$repeat" --tools "$tools" \
  --peer-python "$peer_python" --work "$work" --out "$work/profiling_$rows_small.json" "${quiet[@]}"
results+=("$work/profiling_$rows_small.json")

if [ "$rows_large" != 0 ]; then
  "$python" "$here/bench_profiling.py" --rows "$rows_large" --repeat 1 --tools relmap \
    --work "$work" --out "$work/profiling_$rows_large.json" "${quiet[@]}"
  results+=("$work/profiling_$rows_large.json")
fi

"$python" "$here/bench_ingest.py" --rows "$rows_ingest" --repeat "$repeat" \
  --work "$work" --out "$work/ingest_$rows_ingest.json" "${quiet[@]}"
results+=("$work/ingest_$rows_ingest.json")

echo
"$python" "$here/print_results.py" "${results[@]}"
