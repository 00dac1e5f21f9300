"""``relmap audit verify RUN``: re-check a run folder against its manifest.

The checks, in order:

1. the manifest itself: with ``expect``, its sha256 against the value the
   runner printed (see :func:`manifest_states` for manifests that
   ``relmap export`` extended later);
2. the run and stage statuses recorded in it;
3. every file it lists: the configuration copy, inputs, executed notebooks,
   artifacts, reports and exports, re-hashed;
4. every executed notebook: ran top to bottom without errors and with the
   stage's parameters (:mod:`relmap_utils.audit.notebooks`);
5. files in the run folder that the manifest does not list;
6. personal data in every file of the run folder
   (:mod:`relmap_utils.audit.pii_scan`), except values on the engagement's
   ``privacy.allowlist``.

Nothing in the run folder is written.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relmap_utils.audit import pii_scan
from relmap_utils.audit.findings import ERROR, NOTE, Finding
from relmap_utils.audit.notebooks import check_notebook, read_notebook_json
from relmap_utils.audit.run_folder import export_records, open_run, stage_records
from relmap_utils.config import CONFIG_FILE
from relmap_utils.errors import ConfigError
from relmap_utils.i18n import LocalText, Msg
from relmap_utils.manifest import (
    COMPLETED_STATUSES,
    MANIFEST_FILE,
    NOTHING_TO_DO,
    sha256_file,
    skip_reason_text,
    write_manifest,
)

logger = logging.getLogger(__name__)

RUN_LOG = "run.log"
# Stage statuses of a complete stage; "skipped" is reported as a note.
_DONE = COMPLETED_STATUSES
_NOT_SCANNED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".zip", ".gz", ".pkl", ".skops")


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_run`.

    Attributes
    ----------
    run_dir : Path
    run_id : str
    manifest_sha256 : str
        sha256 of manifest.json as it is now.
    expect_matched : str or None
        ``"current"`` when ``expect`` equals the current manifest's sha256,
        ``"before_exports"`` when it equals the manifest as it was before
        later exports, None when not given or not matched.
    findings : list of Finding
        Errors and notes, in the order of the checks.
    counts : dict
        How many files were hashed, notebooks checked and files scanned.
    allowlist_sizes : dict
        Entries taken from the run's configuration and from the engagement's
        current engagement.yaml.
    """

    run_dir: Path
    run_id: str
    manifest_sha256: str
    expect_matched: str | None = None
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    allowlist_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == ERROR]

    @property
    def notes(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == NOTE]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self, locale: str | None = None) -> dict[str, Any]:
        """Return the report for ``--json``."""
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "ok": self.ok,
            "manifest_sha256": self.manifest_sha256,
            "expect_matched": self.expect_matched,
            "counts": self.counts,
            "allowlist_sizes": self.allowlist_sizes,
            "errors": [finding.as_dict(locale) for finding in self.errors],
            "notes": [finding.as_dict(locale) for finding in self.notes],
        }


def verify_run(path: str | Path, expect: str | None = None, require_inputs: bool = False) -> VerifyReport:
    """Verify a run folder against its manifest and scan it for personal data.

    Parameters
    ----------
    path : str or Path
        The run folder, ``engagements/<name>/runs/<run-id>``.
    expect : str, optional
        The sha256 of manifest.json that the runner printed and the reviewer
        recorded. A different manifest is an error.
    require_inputs : bool, default=False
        Treat an input file that is absent on this machine as an error. By
        default it is reported as a note ("not available"), because a
        reviewer often has the run folder without the client's data.

    Returns
    -------
    VerifyReport
        ``ok`` is False when any check found an error.

    Raises
    ------
    RunError
        When ``path`` is not a run folder or its manifest cannot be read
        (see :func:`~relmap_utils.audit.run_folder.open_run`).
    """
    run_dir, manifest = open_run(path)
    logger.info("verifying run %s", run_dir)
    report = VerifyReport(run_dir, str(manifest.get("run_id")), sha256_file(run_dir / MANIFEST_FILE))
    counts = report.counts
    counts.update(hashed=0, notebooks=0, scanned=0)

    report.findings.extend(_check_manifest_history(run_dir, manifest, expect, report))
    report.findings.extend(_check_statuses(manifest))
    report.findings.extend(_check_listed_files(run_dir, manifest, counts))
    report.findings.extend(_check_inputs(run_dir, manifest, require_inputs, counts))

    notebooks: dict[str, dict[str, Any] | None] = {}
    for stage in manifest.get("stages") or []:
        record = stage.get("executed_notebook")
        if not isinstance(record, dict) or not (run_dir / record.get("path", "")).is_file():
            continue
        notebook = read_notebook_json(run_dir / record["path"])
        notebooks[record["path"]] = notebook
        counts["notebooks"] += 1
        report.findings.extend(check_notebook(notebook, record["path"], stage.get("params")))

    report.findings.extend(_check_unlisted_files(run_dir, manifest))
    allowlist = _allowlist(run_dir, manifest, report)
    report.findings.extend(_scan_personal_data(run_dir, manifest, allowlist, notebooks, counts))
    logger.info("verified run %s: %d errors, %d notes", run_dir, len(report.errors), len(report.notes))
    return report


# --------------------------------------------------------------------------- manifest


def manifest_states(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Return the sha256 of manifest.json now and before each export, newest first.

    ``relmap export`` appends an entry to the manifest's ``exports`` list and
    rewrites the file with :func:`relmap_utils.manifest.write_manifest`. The
    manifest as it was before an export is therefore the current one with the
    later ``exports`` entries removed, written by the same function. Its
    hash equals the one printed back then, byte for byte, unless something
    else in the manifest changed.
    """
    states = [sha256_file(run_dir / MANIFEST_FILE)]
    earlier = copy.deepcopy(manifest)
    exports = list(earlier.get("exports") or [])
    with tempfile.TemporaryDirectory(prefix="relmap-verify-") as scratch:
        while exports:
            exports.pop()
            if exports:
                earlier["exports"] = list(exports)
            else:
                earlier.pop("exports", None)
            states.append(sha256_file(write_manifest(Path(scratch), earlier)))
    return states


def _check_manifest_history(
    run_dir: Path, manifest: dict[str, Any], expect: str | None, report: VerifyReport
) -> list[Finding]:
    findings: list[Finding] = []
    states = manifest_states(run_dir, manifest)
    exports = manifest.get("exports") or []
    # states[0] is now; states[i] is the manifest before the last i exports.
    for index, entry in enumerate(exports):
        before = states[len(exports) - index]
        recorded = entry.get("previous_manifest_sha256")
        if recorded != before:
            findings.append(
                Finding(
                    "manifest_history_broken",
                    MANIFEST_FILE,
                    params={"export": entry.get("id", "?"), "recorded": recorded or "-", "actual": before},
                )
            )
    if expect is None:
        return findings

    expected_hash = expect.strip().lower()
    if expected_hash == states[0]:
        report.expect_matched = "current"
    elif expected_hash in states[1:]:
        report.expect_matched = "before_exports"
        exports_after = states.index(expected_hash)
        later = ", ".join(str(entry.get("id", "?")) for entry in exports[len(exports) - exports_after :])
        findings.append(Finding("expect_before_exports", MANIFEST_FILE, params={"exports": later}, severity=NOTE))
    else:
        params = {"expected": expected_hash, "actual": states[0]}
        findings.append(Finding("expect_mismatch", MANIFEST_FILE, params=params))
    return findings


def _check_statuses(manifest: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    status = manifest.get("status")
    if status != "succeeded":
        findings.append(Finding("run_status", MANIFEST_FILE, params={"status": status or "-"}))
    for stage in manifest.get("stages") or []:
        stage_status = stage.get("status")
        name = stage.get("id") or stage.get("key") or "?"
        if stage_status == "skipped":
            upstream = ", ".join(stage.get("skipped_because") or []) or "-"
            params = {"stage": name, "upstream": upstream}
            findings.append(Finding("stage_skipped", MANIFEST_FILE, params=params, severity=NOTE))
        elif stage_status == NOTHING_TO_DO:
            reason = stage.get("skip_reason")
            text = LocalText({"zh_CN": skip_reason_text(reason, "zh_CN"), "en": skip_reason_text(reason, "en")})
            params = {"stage": name, "reason": text if text.texts else "-"}
            findings.append(Finding("stage_nothing_to_do", MANIFEST_FILE, params=params, severity=NOTE))
        elif stage_status not in _DONE:
            error = stage.get("error") or {}
            detail = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": ") or "-"
            params = {"stage": name, "status": stage_status or "-", "error": detail}
            findings.append(Finding("stage_status", MANIFEST_FILE, params=params))
    return findings


# --------------------------------------------------------------------------- hashes


def _check_record(run_dir: Path, record: dict[str, Any], counts: dict[str, int]) -> Finding | None:
    """Re-hash one listed file; the path may be absolute for exports outside the run folder."""
    name = str(record.get("path"))
    target = Path(name) if Path(name).is_absolute() else run_dir / name
    if not target.is_file():
        return Finding("file_missing", name)
    counts["hashed"] += 1
    actual = sha256_file(target)
    if actual != record.get("sha256"):
        return Finding(
            "file_modified",
            name,
            params={
                "expected": record.get("sha256") or "-",
                "actual": actual,
                "expected_size": record.get("size", "-"),
                "size": target.stat().st_size,
            },
        )
    return None


def _check_listed_files(run_dir: Path, manifest: dict[str, Any], counts: dict[str, int]) -> list[Finding]:
    records: list[dict[str, Any]] = []
    config_file = manifest.get("config_file")
    if isinstance(config_file, dict):
        records.append(config_file)
    else:
        records.append({"path": CONFIG_FILE, "sha256": None})
    for stage in manifest.get("stages") or []:
        records.extend(stage_records(stage))
    findings = [finding for record in records if (finding := _check_record(run_dir, record, counts))]

    for entry in manifest.get("exports") or []:
        for record in entry.get("files") or []:
            name = str(record.get("path"))
            if Path(name).is_absolute() and not Path(name).is_file():
                # An export written outside the run folder may have been moved
                # to the client; it is reported, not failed.
                findings.append(Finding("export_not_available", name, severity=NOTE))
                continue
            if finding := _check_record(run_dir, record, counts):
                findings.append(finding)
    return findings


def _input_candidates(run_dir: Path, entry: dict[str, Any]) -> list[Path]:
    candidates = []
    if entry.get("resolved_path"):
        candidates.append(Path(entry["resolved_path"]))
    raw = str(entry.get("path") or "")
    if raw and "$" not in raw and not Path(raw).is_absolute():
        # runs/<run-id>/ sits inside the engagement folder, which may have moved.
        candidates.append(run_dir.parent.parent / raw)
    return candidates


def _check_inputs(
    run_dir: Path, manifest: dict[str, Any], require_inputs: bool, counts: dict[str, int]
) -> list[Finding]:
    findings: list[Finding] = []
    for entry in manifest.get("inputs") or []:
        if "sql" in entry and not entry.get("path"):
            continue
        source = str(entry.get("source", "?"))
        label = str(entry.get("path") or entry.get("resolved_path") or "?")
        if entry.get("missing"):
            findings.append(Finding("input_missing_at_run", label, params={"source": source}, severity=NOTE))
            continue

        is_folder = "files" in entry
        candidates = _input_candidates(run_dir, entry)
        found = next((path for path in candidates if (path.is_dir() if is_folder else path.is_file())), None)
        if found is None:
            severity = ERROR if require_inputs else NOTE
            findings.append(Finding("input_not_available", label, params={"source": source}, severity=severity))
            continue

        if is_folder:
            targets = [(found / record["path"], record.get("sha256")) for record in entry["files"]]
        else:
            targets = [(found, entry.get("sha256"))]
        for target, expected in targets:
            actual = sha256_file(target) if target.is_file() else "-"
            counts["hashed"] += target.is_file()
            if actual != expected:
                params = {"source": source, "expected": expected or "-", "actual": actual}
                findings.append(Finding("input_modified", str(target), params=params))
    return findings


def _check_unlisted_files(run_dir: Path, manifest: dict[str, Any]) -> list[Finding]:
    listed = {MANIFEST_FILE, RUN_LOG, CONFIG_FILE}
    config_file = manifest.get("config_file")
    if isinstance(config_file, dict) and config_file.get("path"):
        listed.add(str(config_file["path"]))
    for stage in manifest.get("stages") or []:
        listed.update(str(record["path"]) for record in stage_records(stage))
    listed.update(str(record.get("path")) for record in export_records(manifest))
    return [
        Finding("unlisted_file", name)
        for name in (path.relative_to(run_dir).as_posix() for path in sorted(run_dir.rglob("*")) if path.is_file())
        if name not in listed
    ]


# --------------------------------------------------------------------------- personal data


def _allowlist(run_dir: Path, manifest: dict[str, Any], report: VerifyReport) -> frozenset[str]:
    """Return the allowlist of the run's configuration joined with the engagement's current one.

    The current engagement.yaml counts too, so that a reviewer can allow a
    newly found false positive without re-running the engagement. The report
    shows how many entries came from each file.
    """
    from relmap_utils.config import load_engagement

    from_run = list((manifest.get("config") or {}).get("privacy", {}).get("allowlist") or [])
    from_engagement: list[str] = []
    engagement_file = run_dir.parent.parent / CONFIG_FILE
    if engagement_file.is_file():
        try:
            from_engagement = list(load_engagement(engagement_file).privacy.allowlist)
        except ConfigError:
            report.findings.append(Finding("engagement_unreadable", str(engagement_file), severity=NOTE))
    report.allowlist_sizes = {"run": len(from_run), "engagement": len(set(from_engagement) - set(from_run))}
    return pii_scan.normalize_allowlist([*from_run, *from_engagement])


def _scan_personal_data(
    run_dir: Path,
    manifest: dict[str, Any],
    allowlist: frozenset[str],
    notebooks: dict[str, dict[str, Any] | None],
    counts: dict[str, int],
) -> list[Finding]:
    from relmap_utils.engine import connect

    backend = None
    hits: list[pii_scan.PersonalDataHit] = []
    files = [path for path in sorted(run_dir.rglob("*")) if path.is_file()]
    external = [Path(str(record.get("path"))) for record in export_records(manifest)]
    files.extend(path for path in external if path.is_absolute() and path.is_file())
    findings: list[Finding] = []
    for path in files:
        name = path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                backend = backend or connect()
                hits.extend(pii_scan.scan_parquet(path, name, allowlist, backend))
            elif suffix == ".xlsx":
                hits.extend(pii_scan.scan_xlsx(path, name, allowlist))
            elif suffix == ".ipynb" and (notebook := notebooks.get(name) or read_notebook_json(path)) is not None:
                hits.extend(pii_scan.scan_notebook(notebook, name, allowlist))
            elif suffix in _NOT_SCANNED_SUFFIXES or _looks_binary(path):
                findings.append(Finding("not_scanned", name, severity=NOTE))
                continue
            else:
                hits.extend(pii_scan.scan_text_file(path, name, allowlist))
        except Exception as exc:  # noqa: BLE001
            # A damaged Parquet or xlsx file fails inside pyarrow, DuckDB or
            # zipfile with their own exception types. A file that cannot be
            # read cannot be cleared of personal data, so it is an error.
            logger.info("could not scan %s: %s", name, type(exc).__name__)
            findings.append(Finding("scan_failed", name, params={"error": type(exc).__name__}))
            continue
        counts["scanned"] += 1
    findings.extend(
        Finding(
            "personal_data",
            hit.file,
            hit.where,
            {"kind": Msg(f"audit.kind.{hit.kind}"), "place": hit.place, "count": hit.count, "masked": hit.masked},
        )
        for hit in hits
    )
    return findings


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8192)


def report_json(report: VerifyReport, locale: str | None = None) -> str:
    """Return the report as indented JSON text."""
    return json.dumps(report.as_dict(locale), ensure_ascii=False, indent=2)
