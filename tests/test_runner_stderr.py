"""Kernel stderr during `relmap run`: the shutdown KeyboardInterrupt line is hidden, everything else passes."""

from __future__ import annotations

import os

import pytest

from relmap_utils.runner import _StderrFilter, filter_kernel_shutdown_noise, is_kernel_shutdown_noise, run_engagement
from relmap_utils.stages import Stage
from test_runner_support import make_engagement, write_notebook

NOISE = "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel."

NOISY_CELLS = [
    'run_dir = ""',
    f"""
    import os
    os.write(2, b"{NOISE}\\n")
    os.write(2, b"[IPKernelApp] ERROR | Exception in message handler: real problem\\n")
    """,
]


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        (NOISE.encode(), True),
        (b"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel", True),
        (b"\x1b[31m[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\x1b[0m", True),
        (b"[IPKernelApp] ERROR | Exception in message handler:", False),
        (b"KeyboardInterrupt", False),
        (b"Traceback: KeyboardInterrupt caught in kernel in my code", False),
    ],
)
def test_noise_line_recognized(line, hidden):
    assert is_kernel_shutdown_noise(line) is hidden


def _filtered(chunks: list[bytes]) -> bytes:
    read_fd, write_fd = os.pipe()
    out_read, out_write = os.pipe()
    stream = _StderrFilter(read_fd, out_write)
    for chunk in chunks:
        os.write(write_fd, chunk)
    os.close(write_fd)
    stream.run()
    os.close(out_write)
    with os.fdopen(out_read, "rb") as handle:
        return handle.read()


def test_filter_keeps_other_lines_and_progress():
    chunks = [b"Executing:  50%|#####     | 1/2\r", b"[IPKern", b"elApp] ERROR | KeyboardInterrupt caught in kernel.\n",
              b"real error\n", b"last line without newline"]

    # The noise line ended with a newline; the progress line before it keeps that newline.
    assert _filtered(chunks) == b"Executing:  50%|#####     | 1/2\nreal error\nlast line without newline"


def test_filter_restores_stderr(capfd):
    with filter_kernel_shutdown_noise():
        os.write(2, f"{NOISE}\nkept\n".encode())
    os.write(2, b"after\n")

    assert capfd.readouterr().err == "kept\nafter\n"


def test_run_hides_kernel_noise(tmp_path, capfd):
    registry = [Stage("a", "00_a", write_notebook(tmp_path / "noisy.ipynb", NOISY_CELLS))]
    engagement = make_engagement(tmp_path / "tiny")

    result = run_engagement(engagement, registry=registry)

    assert result.ok
    err = capfd.readouterr().err
    assert "KeyboardInterrupt caught in kernel" not in err
    assert "Exception in message handler: real problem" in err
