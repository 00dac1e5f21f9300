"""The reviewer's audit: ``relmap audit verify`` and ``relmap audit diff``.

- :mod:`~relmap_utils.audit.verify`: re-hash a run folder against its
  manifest, check the executed notebooks, list unlisted files, scan for
  personal data;
- :mod:`~relmap_utils.audit.diff`: compare two runs (parameters, inputs,
  code and package versions, headline metrics, executed notebooks);
- :mod:`~relmap_utils.audit.pii_scan`: the personal-data scanner;
- :mod:`~relmap_utils.audit.notebooks`: the checks of one executed notebook;
- :mod:`~relmap_utils.audit.render`: terminal text of both commands.

docs/audit.md describes the commands and what each check proves.
"""

from relmap_utils.audit.diff import RunDiff, diff_runs
from relmap_utils.audit.findings import Finding
from relmap_utils.audit.run_folder import open_run
from relmap_utils.audit.verify import VerifyReport, manifest_states, verify_run

__all__ = ["Finding", "RunDiff", "VerifyReport", "diff_runs", "manifest_states", "open_run", "verify_run"]
