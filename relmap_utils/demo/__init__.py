"""The demo bank: a seeded synthetic Chinese retail bank with planted signals.

:func:`generate_demo_bank` writes source files the way a bank's extract looks
(a GBK customer master with Chinese headers, UTF-8 CSV, Parquet), so that the
demo engagement runs them through ingest exactly like real data. It also writes
the ground truth of every planted signal (segments, take-up drivers, behaviour
before default, fraud rings), which the later stages' tests compare against.
docs/demo_bank.md describes the files and the signals.

Examples
--------
>>> from pathlib import Path
>>> summary = generate_demo_bank(Path("engagements/demo/data"))  # doctest: +SKIP
>>> summary["files"]["transactions"]["rows"]  # doctest: +SKIP
1000000
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from relmap_utils.demo import files
from relmap_utils.demo.balances import make_balances
from relmap_utils.demo.calendar import make_calendar
from relmap_utils.demo.customers import assign_households, make_customers
from relmap_utils.demo.events import EVENTS_PER_TRANSACTION, make_events
from relmap_utils.demo.fraud import plant_rings
from relmap_utils.demo.products import make_holdings
from relmap_utils.demo.relations import make_relations
from relmap_utils.demo.risk import make_repayments, plant_defaults
from relmap_utils.demo.transactions import make_transactions
from relmap_utils.demo.truth import describe_signals, make_labels, make_truth
from relmap_utils.errors import ConfigError

__all__ = ["generate_demo_bank", "demo_bank_is_current", "MIN_CUSTOMERS", "GENERATOR_VERSION"]

logger = logging.getLogger(__name__)

# Raise when a change to the generator changes its output for the same
# parameters, so that a demo bank written by an older version is regenerated.
GENERATOR_VERSION = 2
MIN_CUSTOMERS = 500
# One random stream per component, so that changing one component does not
# shift the random numbers of the others.
_STREAMS = ("customers", "households", "fraud", "products", "risk", "repayments", "balances",
            "transactions", "events", "relations", "labels", "files")


def _check_parameters(n_customers: Any, n_transactions: Any, seed: Any, as_of: Any) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(n_customers) or n_customers < MIN_CUSTOMERS:
        raise ConfigError("demo.invalid_parameter", name="n_customers", value=repr(n_customers),
                          expected=f">= {MIN_CUSTOMERS}")
    if not is_int(n_transactions) or n_transactions < 1:
        raise ConfigError("demo.invalid_parameter", name="n_transactions", value=repr(n_transactions), expected=">= 1")
    if not is_int(seed) or seed < 0:
        raise ConfigError("demo.invalid_parameter", name="seed", value=repr(seed), expected=">= 0")
    if not isinstance(as_of, str):
        raise ConfigError("demo.invalid_parameter", name="as_of", value=repr(as_of), expected="YYYY-MM-DD")


def generate_demo_bank(
    out_dir: Path | str,
    n_customers: int = 20_000,
    n_transactions: int = 1_000_000,
    seed: int = 20240601,
    as_of: str = "2024-06-30",
) -> dict[str, Any]:
    """Generate the demo bank's source files and ground truth in ``out_dir``.

    Parameters
    ----------
    out_dir : Path or str
        Folder for the files; created when missing. Files of an earlier demo
        bank in it are replaced, other files are left alone.
    n_customers : int, default=20_000
        Number of customers, at least ``MIN_CUSTOMERS``.
    n_transactions : int, default=1_000_000
        Exact number of rows of transactions.parquet. App events are about
        0.6 times as many.
    seed : int, default=20240601
        Seed of the random streams; the same parameters give byte-identical files.
    as_of : str, default="2024-06-30"
        Last day of the 18-month history (ISO date, 2016-06-01 to 2030-12-31).

    Returns
    -------
    dict
        ``parameters``, ``generator_version``, ``files`` (per canonical table:
        ``path`` relative to ``out_dir``, ``rows``, ``sha256``), ``truth`` and
        ``signals`` (path and sha256 of the ground-truth files) and ``planted``
        (definitions and counts of the planted signals). The same dictionary is
        written to ``demo_bank.json``.

    Raises
    ------
    ConfigError
        When a parameter is out of range, including a transaction count too
        small for the salaries and repayments of ``n_customers``.
    """
    _check_parameters(n_customers, n_transactions, seed, as_of)
    calendar = make_calendar(as_of)
    started = time.perf_counter()
    logger.info("generating demo bank: %d customers, %d transactions, seed %d", n_customers, n_transactions, seed)
    rng = {name: np.random.default_rng(stream)
           for name, stream in zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS)))}

    customers = make_customers(rng["customers"], int(n_customers), calendar)
    family = assign_households(rng["households"], customers)
    rings = plant_rings(rng["fraud"], customers, calendar)
    holdings = make_holdings(rng["products"], customers, calendar)
    accounts = holdings.accounts
    risk = plant_defaults(rng["risk"], customers, accounts, calendar)
    repayments = make_repayments(rng["repayments"], accounts, risk, calendar)
    balances = make_balances(rng["balances"], accounts, customers, risk, calendar)
    transactions, _ = make_transactions(rng["transactions"], customers, accounts, repayments, risk, rings, family,
                                        int(n_transactions), calendar)
    events = make_events(rng["events"], customers, holdings, risk, rings,
                         round(EVENTS_PER_TRANSACTION * n_transactions), calendar)
    relations = make_relations(rng["relations"], customers, accounts, family, events, transactions, calendar)
    labels = make_labels(rng["labels"], customers, holdings, risk, rings, calendar)
    logger.info("demo bank drawn in %.1f s; writing files", time.perf_counter() - started)

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Any] = {
        "customers": files.customers_frame(rng["files"], customers),
        "accounts": files.accounts_frame(accounts, customers, calendar),
        "balances": files.balances_table(balances, accounts, customers, calendar),
        "transactions": files.transactions_table(transactions, accounts, customers, calendar),
        "events": files.events_table(events, customers, calendar),
        "relations": files.relations_frame(relations, customers, calendar),
        "repayments": files.repayments_frame(repayments, accounts, customers, calendar),
        "labels": files.labels_frame(labels, customers, calendar),
    }
    written = {}
    for table, data in tables.items():
        path = folder / files.SOURCE_FILES[table]
        if isinstance(data, pa.Table):
            files.write_parquet(data, path)
        elif table == "customers":
            # Exported from a Windows client: GBK with CRLF line ends.
            files.write_csv(data, path, encoding="gbk", line_end="\r\n")
        elif table == "accounts":
            files.write_csv(data, path, encoding="utf-8-sig")
        else:
            files.write_csv(data, path, encoding="utf-8")
        written[table] = {"path": path.name, "rows": len(data), "sha256": files.sha256_of(path)}

    truth_path = folder / files.TRUTH_FILE
    files.write_parquet(files.truth_table(make_truth(customers, holdings, risk, rings, calendar)), truth_path)
    planted = describe_signals(customers, holdings, risk, rings, calendar)
    signals_path = folder / files.SIGNALS_FILE
    files.write_json(planted, signals_path)

    summary = {
        "parameters": {"n_customers": int(n_customers), "n_transactions": int(n_transactions), "seed": int(seed),
                       "as_of": str(calendar.as_of)},
        "generator_version": GENERATOR_VERSION,
        "files": written,
        "truth": {"path": truth_path.name, "rows": len(customers), "sha256": files.sha256_of(truth_path)},
        "signals": {"path": signals_path.name, "sha256": files.sha256_of(signals_path)},
        "planted": planted,
    }
    files.write_json(summary, folder / files.SUMMARY_FILE)
    logger.info("demo bank written to %s in %.1f s", folder, time.perf_counter() - started)
    return summary


def demo_bank_is_current(
    out_dir: Path | str,
    n_customers: int = 20_000,
    n_transactions: int = 1_000_000,
    seed: int = 20240601,
    as_of: str = "2024-06-30",
) -> bool:
    """Return whether ``out_dir`` contains an intact demo bank made with these parameters.

    True only when ``demo_bank.json`` records the same parameters and generator
    version and every file listed in it still has its recorded SHA-256, so a
    caller can skip regenerating.
    """
    summary_path = Path(out_dir) / files.SUMMARY_FILE
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = {"n_customers": n_customers, "n_transactions": n_transactions, "seed": seed,
                "as_of": str(np.datetime64(as_of, "D"))}
    if summary.get("parameters") != expected or summary.get("generator_version") != GENERATOR_VERSION:
        return False
    listed = [*summary.get("files", {}).values(), summary.get("truth", {}), summary.get("signals", {})]
    for entry in listed:
        path = Path(out_dir) / str(entry.get("path", ""))
        if not path.is_file() or files.sha256_of(path) != entry.get("sha256"):
            return False
    return True
