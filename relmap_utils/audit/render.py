"""Terminal text of ``relmap audit verify`` and ``relmap audit diff``, in the active language."""

from __future__ import annotations

import json
from typing import Any

from relmap_utils.audit.diff import Change, MetricRow, RunDiff
from relmap_utils.audit.pii_scan import mask_personal
from relmap_utils.audit.verify import VerifyReport
from relmap_utils.i18n import tr

_MAX_VALUE_WIDTH = 80


def format_verify(report: VerifyReport) -> str:
    """Return the verify report as lines for the terminal: summary, errors, notes, verdict."""
    lines = [
        tr("audit.report.header", run_id=report.run_id, path=str(report.run_dir)),
        tr("audit.report.manifest", sha256=report.manifest_sha256),
    ]
    if report.expect_matched == "current":
        lines.append(tr("audit.report.expect_current"))
    elif report.expect_matched == "before_exports":
        lines.append(tr("audit.report.expect_before_exports"))
    lines.append(
        tr("audit.report.counts", **report.counts, run=report.allowlist_sizes.get("run", 0),
           engagement=report.allowlist_sizes.get("engagement", 0))
    )  # fmt: skip
    if report.errors:
        lines.append(tr("audit.report.errors", count=len(report.errors)))
        lines.extend("  - " + finding.message() for finding in report.errors)
    if report.notes:
        lines.append(tr("audit.report.notes", count=len(report.notes)))
        lines.extend("  - " + finding.message() for finding in report.notes)
    if report.ok:
        lines.append(tr("audit.report.ok", run_id=report.run_id))
    else:
        lines.append(tr("audit.report.failed", run_id=report.run_id, count=len(report.errors)))
    return "\n".join(lines)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = mask_personal(text)
    return text if len(text) <= _MAX_VALUE_WIDTH else text[: _MAX_VALUE_WIDTH - 1] + "…"


def _changes(title_key: str, changes: list[Change], with_group: bool = False) -> list[str]:
    if not changes:
        return [tr(title_key, count=0) + " " + tr("audit.diff.no_change")]
    lines = [tr(title_key, count=len(changes))]
    for change in changes:
        name = f"{change.group}.{change.name}" if with_group else change.name
        lines.append(f"  {name}: {_value(change.before)} → {_value(change.after)}")
    return lines


def _input_line(change: Change) -> str:
    before, after = change.before, change.after
    if before is None:
        return "  " + tr("audit.diff.input_added", source=change.name, path=_value(after.get("path")))
    if after is None:
        return "  " + tr("audit.diff.input_removed", source=change.name, path=_value(before.get("path")))
    return "  " + tr(
        "audit.diff.input_changed",
        source=change.name,
        path=_value(after.get("path") or after.get("sql")),
        before=_short_hash(before.get("sha256")),
        after=_short_hash(after.get("sha256")),
        size_before=_value(before.get("size")),
        size_after=_value(after.get("size")),
    )


def _short_hash(value: Any) -> str:
    return str(value)[:12] if value else "-"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}"


def _metric_lines(rows: list[MetricRow]) -> list[str]:
    from relmap_utils.cli import format_table

    if not rows:
        return [tr("audit.diff.metrics", count=0) + " " + tr("audit.diff.no_metrics")]
    changed = sum(row.changed for row in rows)
    lines = [tr("audit.diff.metrics", count=changed)]
    header = [tr("audit.diff.col.stage"), tr("audit.diff.col.metric"), "A", "B", tr("audit.diff.col.delta")]
    table = [
        [row.stage, row.metric, _number(row.before), _number(row.after),
         ("" if not row.changed else _signed(row.delta))]
        for row in rows
    ]  # fmt: skip
    lines.extend("  " + line for line in format_table(header, table).splitlines())
    return lines


def _signed(delta: float | None) -> str:
    if delta is None:
        return "*"
    return ("+" if delta > 0 else "") + _number(delta)


def _notebook_lines(diff: RunDiff) -> list[str]:
    differing = sum(item.status in ("changed", "only_a", "only_b") for item in diff.notebooks)
    lines = [tr("audit.diff.notebooks", count=differing)]
    for item in diff.notebooks:
        cells = len(item.cells) + item.more_cells
        lines.append("  " + tr(f"audit.diff.notebook.{item.status}", stage=item.stage, cells=cells))
        for cell in item.cells:
            lines.append("    " + tr(f"audit.diff.cell.{cell.kind}", a=cell.cell_a or "-", b=cell.cell_b or "-"))
            lines.extend("      " + line for line in cell.lines)
        if item.more_cells:
            lines.append("    " + tr("audit.diff.more_cells", count=item.more_cells))
    return lines


def format_diff(diff: RunDiff) -> str:
    """Return the comparison of two runs as sections for the terminal."""
    lines = [tr("audit.diff.header", a=diff.run_a, b=diff.run_b, path_a=diff.path_a, path_b=diff.path_b)]
    lines += _changes("audit.diff.parameters", diff.parameters, with_group=True)
    lines += _changes("audit.diff.config", diff.config)
    if diff.inputs:
        lines.append(tr("audit.diff.inputs", count=len(diff.inputs)))
        lines.extend(_input_line(change) for change in diff.inputs)
    else:
        lines.append(tr("audit.diff.inputs", count=0) + " " + tr("audit.diff.no_change"))
    lines += _changes("audit.diff.code", diff.code)
    lines += _changes("audit.diff.packages", diff.packages)
    lines += _metric_lines(diff.metrics)
    lines += _notebook_lines(diff)
    return "\n".join(lines)


def diff_json(diff: RunDiff) -> str:
    """Return the comparison as indented JSON, personal data masked in every text value."""
    return mask_personal(json.dumps(diff.as_dict(), ensure_ascii=False, indent=2, default=str))
