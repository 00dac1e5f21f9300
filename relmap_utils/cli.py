"""The ``relmap`` command: new, validate, run, runs, demo, notebook and reidentify.

Help texts and messages come from the catalogs (``cli.po``, ``runner.po``),
in the language of ``RELMAP_LANG`` and, once an engagement is loaded, of its
``locale``. A :class:`~relmap_utils.errors.RelmapError` is printed without a
traceback and exits with code 2; a failed stage exits with code 1.
"""

import functools
import inspect
import logging
import importlib
import os
import re
import secrets
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from relmap_utils import __version__
from relmap_utils.cli_help import RelmapGroup
from relmap_utils.config import CONFIG_FILE, Engagement, engagement_file, load_engagement
from relmap_utils.errors import ConfigError, RelmapError
from relmap_utils.i18n import set_locale, tr
from relmap_utils.notebook_exec import DEFAULT_CELL_TIMEOUT, execute_notebook, load_params_file, parse_param_pair
from relmap_utils.paths import ENGAGEMENTS_DIR, TEMPLATE_DIR
from relmap_utils.plural import counted


NAME_PLACEHOLDER = "__ENGAGEMENT_NAME__"
_ENGAGEMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STATUS_ORDER = ("succeeded", "reused", "nothing_to_do", "failed", "skipped", "running", "pending")

F = TypeVar("F", bound=Callable[..., Any])


def _reports_errors(command: F) -> F:
    """Print a RelmapError as its message, without a traceback, and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RelmapError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _display_width(text))


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Align columns by display width, counting a Chinese character as two columns."""
    widths = [max(_display_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(_pad(cell, width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join(lines)


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``h:mm:ss``, or ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _status_text(status: str) -> str:
    key = f"runner.status.{status}"
    text = tr(key)
    return status if text == key else text


def _counts_text(counts: dict[str, int], nothing_to_do: Sequence[str] = ()) -> str:
    def position(status: str) -> tuple[int, str]:
        return (_STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER), status)

    ordered = sorted(counts, key=position)
    text = ", ".join(f"{_status_text(status)} {counts[status]}" for status in ordered) or "-"
    if nothing_to_do:
        text += tr("cli.runs.nothing_to_do", stages=", ".join(nothing_to_do))
    return text


def collect_overrides(pairs: Sequence[str] | None, params_file: Path | None) -> dict[str, dict[str, Any]]:
    """Build stage overrides from a YAML file (``{stage: {name: value}}``) and ``stage.name=value`` pairs.

    Pairs win over the file. Stage names are checked by the runner.
    """
    from relmap_utils.stages import merge_overrides, pairs_to_overrides, registered_stages

    file_layer = load_params_file(params_file) if params_file else {}
    pair_layer = pairs_to_overrides([parse_param_pair(pair) for pair in pairs or []])
    return merge_overrides(registered_stages(), file_layer, pair_layer)


def _print_progress(event: Any) -> None:
    prefix = f"[{event.index}/{event.total}] {event.stage.id}"
    if event.kind == "start":
        typer.echo(tr("cli.progress.start", stage=prefix))
    else:
        status = _status_text(event.status)
        typer.echo(tr("cli.progress.end", stage=prefix, status=status, seconds=f"{event.elapsed:.1f}"))
        if getattr(event, "reason", None):
            typer.echo(tr("cli.progress.reason", reason=event.reason))


def _run_and_report(
    engagement: Path,
    stages: str | None,
    from_stage: str | None,
    overrides: dict[str, dict[str, Any]],
    cell_timeout: float | None,
) -> None:
    from relmap_utils.runner import run_engagement

    stage_list = [name.strip() for name in stages.split(",") if name.strip()] if stages else None
    result = run_engagement(
        engagement, stage_list, from_stage, overrides,
        cell_timeout=cell_timeout, progress=_print_progress, progress_bar=sys.stderr.isatty(),
    )  # fmt: skip
    typer.echo(tr("cli.run.folder", path=str(result.run_dir)))
    typer.echo(tr("cli.run.manifest_sha256", sha256=result.manifest_sha256))
    if not result.ok:
        typer.echo(tr("cli.run.failed", run_id=result.run_id), err=True)
        if result.failure is not None:
            typer.echo(str(result.failure), err=True)
        raise typer.Exit(1)
    typer.echo(tr("cli.run.succeeded", run_id=result.run_id))


def _timeout_value(seconds: float) -> float | None:
    return None if seconds <= 0 else seconds


def build_app() -> typer.Typer:
    """Build the ``relmap`` Typer application with help texts in the current language."""
    app = typer.Typer(
        name="relmap",
        help=tr("cli.help"),
        cls=RelmapGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    def show_version(value: bool) -> None:
        if value:
            typer.echo(f"relmap {__version__}")
            raise typer.Exit()

    @app.callback()
    def root(
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help=tr("cli.opt.verbose"))] = False,
        version: Annotated[
            bool, typer.Option("--version", help=tr("cli.opt.version"), callback=show_version, is_eager=True)
        ] = False,
    ) -> None:
        _configure_logging(verbose)

    def engagement_arg() -> Any:
        return typer.Argument(help=tr("cli.arg.engagement"), show_default=False)

    def timeout_opt() -> Any:
        return typer.Option("--cell-timeout", help=tr("cli.opt.cell_timeout"))

    _add_audit_commands(app)
    _add_reidentify_command(app)

    @app.command("run", help=tr("cli.run.help"))
    @_reports_errors
    def run_command(
        engagement: Annotated[Path, engagement_arg()],
        stages: Annotated[str | None, typer.Option("--stages", help=tr("cli.opt.stages"), show_default=False)] = None,
        from_stage: Annotated[str | None, typer.Option("--from", help=tr("cli.opt.from"), show_default=False)] = None,
        param: Annotated[
            list[str] | None,
            typer.Option("--param", "-p", metavar="STAGE.NAME=VALUE", help=tr("cli.opt.param"), show_default=False),
        ] = None,
        params_file: Annotated[
            Path | None, typer.Option("--params", help=tr("cli.opt.params"), show_default=False)
        ] = None,
        cell_timeout: Annotated[float, timeout_opt()] = DEFAULT_CELL_TIMEOUT,
    ) -> None:
        overrides = collect_overrides(param, params_file)
        _run_and_report(engagement, stages, from_stage, overrides, _timeout_value(cell_timeout))

    @app.command("runs", help=tr("cli.runs.help"))
    @_reports_errors
    def runs_command(engagement: Annotated[Path, engagement_arg()]) -> None:
        from relmap_utils.runner import list_runs

        _use_engagement_locale(engagement)
        summaries = list_runs(engagement)
        if not summaries:
            typer.echo(tr("cli.runs.none", path=str(engagement)))
            return
        header = [tr("cli.runs.col.run"), tr("cli.runs.col.status"), tr("cli.runs.col.start"),
                  tr("cli.runs.col.duration"), tr("cli.runs.col.stages")]  # fmt: skip
        rows = [
            [
                summary.run_id,
                _status_text(summary.status),
                summary.started_at or "-",
                format_duration(summary.duration_seconds),
                _counts_text(summary.counts, summary.nothing_to_do),
            ]
            for summary in summaries
        ]
        typer.echo(format_table(header, rows))

    @app.command("validate", help=tr("cli.validate.help"))
    @_reports_errors
    def validate_command(engagement: Annotated[Path, engagement_arg()]) -> None:
        config = load_engagement(engagement)
        set_locale(config.locale)
        problems = validate_engagement(config, engagement_file(engagement).parent)
        if problems:
            typer.echo(tr("cli.validate.problems", count=counted("cli.count.problems", len(problems))), err=True)
            for problem in problems:
                typer.echo(f"  - {problem}", err=True)
            raise typer.Exit(2)
        typer.echo(tr("cli.validate.ok", name=config.name))

    @app.command("new", help=tr("cli.new.help"))
    @_reports_errors
    def new_command(
        name: Annotated[str, typer.Argument(help=tr("cli.arg.name"), show_default=False)],
        folder: Annotated[Path, typer.Option("--dir", help=tr("cli.opt.dir"))] = Path("engagements"),
    ) -> None:
        target = create_engagement(name, folder)
        typer.echo(tr("cli.new.created", path=str(target), file=str(target / CONFIG_FILE)))

    @app.command("demo", help=tr("cli.demo.help"))
    @_reports_errors
    def demo_command(
        customers: Annotated[int, typer.Option("--customers", min=1, help=tr("cli.opt.customers"))] = 20_000,
        transactions: Annotated[
            int, typer.Option("--transactions", min=0, help=tr("cli.opt.transactions"))
        ] = 1_000_000,
        seed: Annotated[int | None, typer.Option("--seed", help=tr("cli.opt.seed"), show_default=False)] = None,
        engagement: Annotated[
            Path, typer.Option("--engagement", help=tr("cli.opt.demo_engagement"))
        ] = ENGAGEMENTS_DIR / "demo",
        cell_timeout: Annotated[float, timeout_opt()] = DEFAULT_CELL_TIMEOUT,
    ) -> None:
        config = load_engagement(engagement)
        set_locale(config.locale)
        _ensure_demo_key(config)
        prepare_demo_data(engagement_file(engagement).parent / "data", customers, transactions, seed)
        _run_and_report(engagement, None, None, {}, _timeout_value(cell_timeout))

    @app.command("notebook", help=tr("cli.notebook.help"))
    @_reports_errors
    def notebook_command(
        notebook: Annotated[Path, typer.Argument(help=tr("cli.arg.notebook"), show_default=False)],
        output: Annotated[Path, typer.Argument(help=tr("cli.arg.output"), show_default=False)],
        param: Annotated[
            list[str] | None,
            typer.Option("--param", "-p", metavar="NAME=VALUE", help=tr("cli.opt.notebook_param"), show_default=False),
        ] = None,
        params_file: Annotated[
            Path | None, typer.Option("--params", help=tr("cli.opt.notebook_params"), show_default=False)
        ] = None,
        cwd: Annotated[Path | None, typer.Option("--cwd", help=tr("cli.opt.cwd"), show_default=False)] = None,
        cell_timeout: Annotated[float, timeout_opt()] = DEFAULT_CELL_TIMEOUT,
    ) -> None:
        parameters = load_params_file(params_file) if params_file else {}
        parameters.update(parse_param_pair(pair) for pair in param or [])
        started = time.monotonic()
        execute_notebook(notebook, output, parameters, cwd=cwd, timeout=_timeout_value(cell_timeout),
                         progress_bar=sys.stderr.isatty())  # fmt: skip
        typer.echo(tr("cli.notebook.done", output=str(output), seconds=f"{time.monotonic() - started:.1f}"))

    @app.command("serve", help=tr("serve.cli.help"))
    @_reports_errors
    def serve_command(
        engagement: Annotated[Path, engagement_arg()],
        run: Annotated[str | None, typer.Option("--run", help=tr("serve.cli.run"), show_default=False)] = None,
        host: Annotated[str, typer.Option("--host", help=tr("serve.cli.host"))] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help=tr("serve.cli.port"))] = 8866,
        pool_size: Annotated[int, typer.Option("--pool-size", min=0, help=tr("serve.cli.pool_size"))] = 2,
    ) -> None:
        from relmap_utils.serve import serve

        serve(engagement, run, host=host, port=port, pool_size=pool_size, echo=typer.echo)

    return app


def _use_engagement_locale(engagement: Path) -> None:
    # A broken engagement.yaml must not stop `relmap runs` from listing old runs.
    try:
        set_locale(load_engagement(engagement).locale)
    except ConfigError:
        pass


# Stages whose parameters have their own model: the function that validates
# ``stages.<key>.params``, so `relmap validate` reports a bad value before a run.
_STAGE_PARAMETER_CHECKS = {
    "profiling": "relmap_utils.profiling.stage:check_parameters",
    "segmentation": "relmap_utils.segmentation.params:parse_params",
    "propensity": "relmap_utils.propensity.params:check_parameters",
    "risk": "relmap_utils.risk.params:make_params",
}


def validate_engagement(engagement: Engagement, engagement_dir: Path) -> list[str]:
    """Check an engagement without running it and return the problems as messages.

    Checks the stage parameters and notebooks (each needs a ``parameters``
    cell), the pseudonym key variable, and the sources through
    ``relmap_utils.ingest.validate_sources`` (files exist and open, mapped
    columns are present, no undeclared personal data). Configuration errors are raised by
    :func:`~relmap_utils.config.load_engagement` before this runs.
    """
    from relmap_utils.ingest import validate_sources
    from relmap_utils.manifest import pseudonym_key_record
    from relmap_utils.notebook_exec import check_parameters_cell, normalize_parameters
    from relmap_utils.runner import RUN_DIR_PARAMETER
    from relmap_utils.stages import available_stages

    problems: list[str] = []
    for stage in available_stages():
        if not engagement.stage(stage.key).enabled:
            continue
        try:
            params = normalize_parameters({RUN_DIR_PARAMETER: "", **engagement.stage(stage.key).params})
            check_parameters_cell(stage.notebook_path, params)
            check = _STAGE_PARAMETER_CHECKS.get(stage.key)
            if check is not None:
                module, function = check.split(":")
                getattr(importlib.import_module(module), function)(engagement.stage(stage.key).params)
        except RelmapError as exc:
            problems.append(str(exc))
    try:
        pseudonym_key_record(engagement)
    except RelmapError as exc:
        problems.append(str(exc))
    problems.extend(str(problem) for problem in validate_sources(engagement, engagement_dir))
    # validate_sources may check the key as well; list each message once
    return list(dict.fromkeys(problems))


def create_engagement(name: str, folder: Path) -> Path:
    """Create ``folder/name`` with engagement.yaml from the template and an empty data/ folder.

    Raises
    ------
    ConfigError
        When the name is not allowed or the folder already exists.
    """
    if not _ENGAGEMENT_NAME.match(name):
        raise ConfigError("cli.new.bad_name", name=name)
    target = folder / name
    template = (TEMPLATE_DIR / CONFIG_FILE).read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir(exist_ok=False)
    except FileExistsError:
        raise ConfigError("cli.new.exists", path=str(target)) from None
    (target / "data").mkdir()
    (target / CONFIG_FILE).write_text(template.replace(NAME_PLACEHOLDER, name), encoding="utf-8")
    return target


def _ensure_demo_key(engagement: Engagement) -> None:
    variable = engagement.privacy.key_env
    if os.environ.get(variable):
        return
    # Only the demo may invent a key, because its data is synthetic. The key
    # lives only in this process's environment, which the kernels inherit.
    os.environ[variable] = secrets.token_hex(32)
    typer.echo(tr("cli.demo.random_key", variable=variable), err=True)


def prepare_demo_data(data_dir: Path, customers: int, transactions: int, seed: int | None) -> bool:
    """Generate the demo bank into ``data_dir`` unless it contains demo data made with the same parameters.

    Returns
    -------
    bool
        True when the data was generated, False when the existing data was kept.
    """
    from relmap_utils.demo import demo_bank_is_current, generate_demo_bank

    if seed is None:
        seed = inspect.signature(generate_demo_bank).parameters["seed"].default
    if demo_bank_is_current(data_dir, n_customers=customers, n_transactions=transactions, seed=seed):
        typer.echo(tr("cli.demo.data_kept", path=str(data_dir)))
        return False

    typer.echo(tr("cli.demo.generating", customers=counted("cli.count.customers", customers),
                   transactions=counted("cli.count.transactions", transactions), path=str(data_dir)))
    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    generate_demo_bank(data_dir, n_customers=customers, n_transactions=transactions, seed=seed)
    typer.echo(tr("cli.demo.generated", seconds=f"{time.monotonic() - started:.1f}"))
    return True


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # relmap reports undeclared parameters and failures itself; Papermill would repeat them.
        logging.getLogger("papermill").setLevel(logging.CRITICAL)


def _use_run_locale(run: Path) -> None:
    # The command reports the error itself; here a broken run only keeps the default language.
    from relmap_utils.audit import open_run

    try:
        set_locale((open_run(run)[1].get("config") or {}).get("locale"))
    except RelmapError:
        pass


def _add_audit_commands(app: typer.Typer) -> None:
    """Register ``relmap audit verify``, ``relmap audit diff`` and ``relmap export`` on ``app``."""
    audit = typer.Typer(name="audit", help=tr("audit.cli.help"), no_args_is_help=True, add_completion=False)
    app.add_typer(audit, name="audit")

    def run_arg(help_key: str = "audit.cli.arg.run") -> Any:
        return typer.Argument(help=tr(help_key), show_default=False)

    def json_opt() -> Any:
        return typer.Option("--json", help=tr("audit.cli.opt.json"))

    @audit.command("verify", help=tr("audit.cli.verify_help"))
    @_reports_errors
    def verify_command(
        run: Annotated[Path, run_arg()],
        expect: Annotated[
            str | None, typer.Option("--expect", help=tr("audit.cli.opt.expect"), show_default=False)
        ] = None,
        require_inputs: Annotated[bool, typer.Option("--require-inputs", help=tr("audit.cli.opt.require_inputs"))] = False,
        as_json: Annotated[bool, json_opt()] = False,
    ) -> None:
        from relmap_utils.audit import verify_run
        from relmap_utils.audit.render import format_verify
        from relmap_utils.audit.verify import report_json

        _use_run_locale(run)
        report = verify_run(run, expect=expect, require_inputs=require_inputs)
        typer.echo(report_json(report) if as_json else format_verify(report))
        if not report.ok:
            raise typer.Exit(1)

    @audit.command("diff", help=tr("audit.cli.diff_help"))
    @_reports_errors
    def diff_command(
        run_a: Annotated[Path, run_arg("audit.cli.arg.run_a")],
        run_b: Annotated[Path, run_arg("audit.cli.arg.run_b")],
        as_json: Annotated[bool, json_opt()] = False,
    ) -> None:
        from relmap_utils.audit import diff_runs
        from relmap_utils.audit.render import diff_json, format_diff

        _use_run_locale(run_b)
        result = diff_runs(run_a, run_b)
        typer.echo(diff_json(result) if as_json else format_diff(result))

    @app.command("export", help=tr("export.cli.help"))
    @_reports_errors
    def export_command(
        run: Annotated[Path, run_arg("export.cli.arg.run")],
        out: Annotated[Path | None, typer.Option("--out", help=tr("export.cli.opt.out"), show_default=False)] = None,
    ) -> None:
        from relmap_utils.export import export_run

        _use_run_locale(run)
        result = export_run(run, out)
        typer.echo(tr("export.cli.done", folder=str(result.folder), count=len(result.files)))
        for path in result.files:
            typer.echo(f"  {path}")
        typer.echo(tr("export.cli.manifest", sha256=result.manifest_sha256, previous=result.previous_manifest_sha256))


def _add_reidentify_command(app: typer.Typer) -> None:
    @app.command("reidentify", help=tr("propensity.cli.help"))
    @_reports_errors
    def reidentify_command(
        listing: Annotated[
            Path, typer.Argument(help=tr("propensity.cli.arg.list"), metavar="LIST", show_default=False)
        ],
        customers: Annotated[Path, typer.Option("--customers", help=tr("propensity.cli.opt.customers"),
                                                show_default=False)],
        id_column: Annotated[str | None, typer.Option("--id-column", help=tr("propensity.cli.opt.id_column"),
                                                      show_default=False)] = None,
        list_column: Annotated[str | None, typer.Option("--list-column", help=tr("propensity.cli.opt.list_column"),
                                                        show_default=False)] = None,
        key_env: Annotated[str, typer.Option("--key-env", help=tr("propensity.cli.opt.key_env"))] =
        "RELMAP_PSEUDONYM_KEY",
        out: Annotated[Path | None, typer.Option("--out", help=tr("propensity.cli.opt.out"), show_default=False)] = None,
    ) -> None:
        from relmap_utils.propensity.reidentify import reidentify

        path, count = reidentify(listing, customers, id_column=id_column, list_column=list_column, key_env=key_env,
                                 out=out)
        typer.echo(tr("propensity.reidentify.done", count=count, path=str(path)))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``relmap`` console script."""
    app = build_app()
    app(args=list(argv) if argv is not None else None, prog_name="relmap")


if __name__ == "__main__":
    main()
