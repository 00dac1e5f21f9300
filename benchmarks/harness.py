"""Run benchmark measurements in fresh processes and record time and memory.

Every measurement is one child process. The parent starts it, waits for it
with ``os.wait4`` and keeps the child's own resource usage. The peak resident
set size (``ru_maxrss``) then belongs to that child alone, whereas
``RUSAGE_CHILDREN`` would report the largest of all children so far. The
child writes its own timings to a JSON file whose path the parent passes on
the command line.

This module only uses the standard library, because the benchmark scripts
also run under the peers' virtual environment, which has no relmap installed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
PEERS_PYTHON = BENCH_DIR / ".venv-peers" / "bin" / "python"


def shared_dir() -> Path:
    """Return ``RELMAP_SHARED_DIR``, or ``../shared`` next to the repository (as relmap does)."""
    configured = os.environ.get("RELMAP_SHARED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (REPO_ROOT.parent / "shared").resolve()


def _busy_cpu_seconds() -> float | None:
    # Busy time of all CPUs since boot (user, nice, system, irq, softirq, steal),
    # from /proc/stat in clock ticks; None where that file does not exist.
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def busy_share(window: float) -> float | None:
    """Return the share of all CPUs' time that was busy during the next ``window`` seconds.

    ``None`` where ``/proc/stat`` does not exist (not Linux).
    """
    before = _busy_cpu_seconds()
    if before is None:
        return None
    time.sleep(window)
    after = _busy_cpu_seconds() or before
    return (after - before) / (window * (os.cpu_count() or 1))


def wait_for_quiet(max_wait: float, threshold: float = 0.15, window: float = 5.0) -> dict[str, Any]:
    """Wait until the machine is mostly idle, for at most ``max_wait`` seconds.

    Parameters
    ----------
    max_wait : float
        Seconds to wait at most; 0 returns at once.
    threshold : float, default=0.15
        Busy share of all CPUs (see :func:`busy_share`) below which the
        machine counts as quiet.
    window : float, default=5.0
        Seconds over which one busy share is measured.

    Returns
    -------
    dict
        ``quiet`` (whether the machine was quiet when waiting ended),
        ``waited_s`` and the last ``busy_share``.
    """
    started = time.perf_counter()
    share = None
    while time.perf_counter() - started < max_wait:
        share = busy_share(window)
        if share is None or share < threshold:
            return {"quiet": True, "waited_s": round(time.perf_counter() - started, 1), "busy_share": share}
    quiet = max_wait <= 0
    return {"quiet": quiet, "waited_s": round(time.perf_counter() - started, 1), "busy_share": share}


def is_disturbed(measurement: dict[str, Any], share: float = 0.1) -> bool:
    """Return whether other processes used more than ``share`` of the CPUs during ``measurement``."""
    other = measurement.get("other_cpu_s")
    if other is None:
        return False
    return other > share * measurement["wall_s"] * (os.cpu_count() or 1)


def measure(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 1800.0,
    quiet_wait: float = 0.0,
    retries: int = 0,
) -> dict[str, Any]:
    """Measure ``command`` like :func:`run_measured`, on a quiet machine where possible.

    Before each attempt the machine gets up to ``quiet_wait`` seconds to fall
    idle (see :func:`wait_for_quiet`). An attempt during which other processes
    used more than a tenth of the CPUs (see :func:`is_disturbed`) is repeated,
    up to ``retries`` times. The last attempt is returned, with ``attempts``
    (how many ran), ``disturbed``, and ``quiet_before`` from the last wait.
    """
    attempts = 0
    while True:
        attempts += 1
        quiet = wait_for_quiet(quiet_wait) if quiet_wait > 0 else None
        measurement = run_measured(command, env=env, timeout=timeout)
        measurement["disturbed"] = is_disturbed(measurement)
        measurement["quiet_before"] = quiet
        measurement["attempts"] = attempts
        if not measurement["ok"] or not measurement["disturbed"] or attempts > retries:
            return measurement


def run_measured(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 1800.0,
    log: Path | None = None,
) -> dict[str, Any]:
    """Run ``command`` in a fresh process and measure it.

    The command receives ``--result FILE`` as two extra arguments and is
    expected to write a JSON object there.

    Parameters
    ----------
    command : sequence of str
        Program and arguments.
    env : dict, optional
        Environment of the child; default this process's environment.
    timeout : float, default=1800.0
        Seconds after which the child is killed and the measurement marked failed.
    log : Path, optional
        File that receives the child's stdout and stderr; default discarded
        unless the child fails, in which case its tail is kept in ``error``.

    Returns
    -------
    dict
        ``wall_s`` (process start to exit, seconds), ``max_rss_mb`` (peak
        resident set size of the child, MiB), ``user_s`` and ``system_s``
        (CPU seconds of the child), ``other_cpu_s`` (CPU seconds that other
        processes of the machine used meanwhile, a sign of a disturbed
        measurement), ``ok``, ``returncode``, ``error`` (tail of the
        child's output when it failed) and ``child`` (the JSON it wrote).
    """
    with tempfile.TemporaryDirectory(prefix="relmap-bench-") as scratch:
        result_file = Path(scratch) / "result.json"
        output_file = log or Path(scratch) / "output.log"
        with open(output_file, "ab") as output:
            busy_before = _busy_cpu_seconds()
            started = time.perf_counter()
            process = subprocess.Popen(
                [*command, "--result", str(result_file)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
            killer = threading.Timer(timeout, process.kill)
            killer.start()
            try:
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                killer.cancel()
            wall = time.perf_counter() - started
            busy_after = _busy_cpu_seconds()
        # Popen did not reap the child itself, so tell it the exit status.
        process.returncode = os.waitstatus_to_exitcode(status)

        child: dict[str, Any] = {}
        if result_file.is_file():
            child = json.loads(result_file.read_text(encoding="utf-8"))
        ok = process.returncode == 0 and bool(child)
        measurement: dict[str, Any] = {
            "ok": ok,
            "returncode": process.returncode,
            "wall_s": round(wall, 3),
            # Linux reports ru_maxrss in KiB.
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "user_s": round(usage.ru_utime, 2),
            "system_s": round(usage.ru_stime, 2),
            "other_cpu_s": None,
            "child": child,
        }
        if busy_before is not None and busy_after is not None:
            other = busy_after - busy_before - usage.ru_utime - usage.ru_stime
            measurement["other_cpu_s"] = round(max(other, 0.0), 1)
        if not ok:
            tail = output_file.read_text(encoding="utf-8", errors="replace")[-3000:]
            measurement["error"] = tail or f"exit status {process.returncode}, no output"
        return measurement


def summarize(measurements: Sequence[dict[str, Any]], time_key: str = "work_s") -> dict[str, Any]:
    """Return the median time and the largest peak memory of repeated measurements.

    Parameters
    ----------
    measurements : sequence of dict
        Outputs of :func:`run_measured`.
    time_key : str, default="work_s"
        Key of the child's own timing (the measured section, without
        interpreter start and imports).

    Returns
    -------
    dict
        ``runs`` (successful repeats), ``failed``, medians of the child's time,
        of the process wall time and of the child's CPU time
        (``median_cpu_s``), the maximum ``max_rss_mb``, the maximum
        ``other_cpu_s`` as ``max_other_cpu_s``, and ``disturbed``, the number
        of runs during which other processes used more than a tenth of the CPUs.
    """
    good = [m for m in measurements if m["ok"]]
    summary: dict[str, Any] = {"runs": len(good), "failed": len(measurements) - len(good)}
    if not good:
        return summary
    summary["median_work_s"] = round(statistics.median(m["child"][time_key] for m in good), 3)
    summary["median_wall_s"] = round(statistics.median(m["wall_s"] for m in good), 3)
    summary["min_work_s"] = round(min(m["child"][time_key] for m in good), 3)
    summary["max_work_s"] = round(max(m["child"][time_key] for m in good), 3)
    summary["max_rss_mb"] = max(m["max_rss_mb"] for m in good)
    others = [m["other_cpu_s"] for m in good if m.get("other_cpu_s") is not None]
    summary["max_other_cpu_s"] = max(others) if others else None
    summary["disturbed"] = sum(1 for m in good if m.get("disturbed"))
    summary["median_cpu_s"] = round(statistics.median(m["user_s"] + m["system_s"] for m in good), 2)
    return summary


def machine_info() -> dict[str, Any]:
    """Return the facts about this machine that a benchmark figure depends on."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(value, 2) for value in os.getloadavg()]
    return info


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON, through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown table of ``rows`` under ``header``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |")
    return "\n".join(lines)


def write_child_result(path: str, result: dict[str, Any]) -> None:
    """Write a child's measurement to the file the parent named."""
    Path(path).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
