"""``relmap serve``: the dashboards of one engagement's run, behind a token, in Voilà.

:func:`serve` picks the run (``--run`` or the latest succeeded run), the
pages that run can show, and the token, then starts
:class:`~relmap_utils.dashboard.server.RelmapVoila` on 127.0.0.1 unless
``--host`` names another address. The run folder reaches the dashboard kernels through the
environment variable ``RELMAP_DASHBOARD_RUN``; the pages read the run's
artifacts and never recompute a model.

Token: ``RELMAP_SERVE_TOKEN`` when set (several tokens separated by commas,
each at least :data:`MIN_TOKEN_LENGTH` characters), else a random token that
is printed once in the page address. Page views are logged to
``<engagement>/logs/serve.log`` with the token's id (a short hash), never the
token.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from relmap_utils.config import engagement_file, load_engagement
from relmap_utils.errors import ConfigError, RunError
from relmap_utils.i18n import set_locale, tr
from relmap_utils.manifest import read_manifest

logger = logging.getLogger(__name__)

TOKEN_ENV = "RELMAP_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
DEFAULT_POOL_SIZE = 2
LOG_FOLDER = "logs"
LOG_FILE = "serve.log"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def choose_run(engagement_dir: Path, run: str | None = None) -> Path:
    """Return the run folder to serve: ``run``, or the latest run whose status is ``succeeded``.

    Parameters
    ----------
    engagement_dir : Path
        The engagement folder.
    run : str, optional
        A run id (the folder name under ``runs/``). Paths are rejected.

    Raises
    ------
    RunError
        When ``run`` is not a plain run id, does not exist or did not
        succeed, or, without ``run``, when no run succeeded.
    """
    from relmap_utils.runner import RUNS_FOLDER, run_dirs

    if run is not None:
        if not _RUN_NAME.match(run) or run in (".", ".."):
            raise RunError("serve.bad_run_name", run=run)
        folder = engagement_dir / RUNS_FOLDER / run
        if not folder.is_dir():
            raise RunError("serve.run_not_found", run=run, folder=str(engagement_dir / RUNS_FOLDER))
        status = read_manifest(folder).get("status")
        if status != "succeeded":
            raise RunError("serve.run_not_succeeded", run=run, status=str(status))
        return folder

    for folder in reversed(run_dirs(engagement_dir)):
        try:
            manifest = read_manifest(folder)
        except RunError:
            continue
        if manifest.get("status") == "succeeded":
            return folder
    raise RunError("serve.no_successful_run", engagement=str(engagement_dir))


def read_tokens(environ: dict[str, str] | None = None) -> tuple[list[str], bool]:
    """Return the accepted tokens and whether they were generated here.

    Raises
    ------
    ConfigError
        When ``RELMAP_SERVE_TOKEN`` contains a token shorter than :data:`MIN_TOKEN_LENGTH`.
    """
    environ = os.environ if environ is None else environ
    configured = [part.strip() for part in environ.get(TOKEN_ENV, "").split(",") if part.strip()]
    if not configured:
        return [secrets.token_urlsafe(24)], True
    if any(len(token) < MIN_TOKEN_LENGTH for token in configured):
        raise ConfigError("serve.weak_token", variable=TOKEN_ENV, minimum=MIN_TOKEN_LENGTH)
    return configured, False


def is_loopback(host: str) -> bool:
    """Return True when ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    engagement: str | Path,
    run: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    pool_size: int = DEFAULT_POOL_SIZE,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the dashboards of one run of ``engagement`` until the process is stopped.

    Parameters
    ----------
    engagement : str or Path
        Engagement folder (or its engagement.yaml).
    run : str, optional
        Run id; default the latest run whose status is ``succeeded``.
    host : str, default="127.0.0.1"
    port : int, default=8866
    pool_size : int, default=2
        Kernels kept pre-started per page, each with the page already
        executed, so a view renders without waiting for a kernel.
    echo : callable, default=print
        Receives the lines for the person who started the server (address,
        pages, log file).

    Raises
    ------
    ConfigError
        When engagement.yaml is invalid or the token is too short.
    RunError
        When there is no run to serve, or the port is taken.
    """
    from relmap_utils.dashboard.pages import available_pages
    from relmap_utils.dashboard.run import RUN_DIR_ENV, open_run
    from relmap_utils.dashboard.server import (
        TEMPLATE_ROOT,
        AccessGate,
        PageViewLog,
        RelmapVoila,
        ServerOptions,
        token_id,
    )

    config_path = engagement_file(engagement)
    config = load_engagement(config_path)
    set_locale(config.locale)
    engagement_dir = config_path.parent
    run_dir = choose_run(engagement_dir, run)
    tokens, generated = read_tokens()
    if pool_size < 0:
        raise ConfigError("serve.bad_pool_size", value=pool_size)

    dashboard_run = open_run(run_dir)
    pages = available_pages(dashboard_run)
    log = PageViewLog(engagement_dir / LOG_FOLDER / LOG_FILE, run_dir.name, dashboard_run.engagement.tz)
    staging = Path(tempfile.mkdtemp(prefix="relmap_serve_"))
    try:
        staged = []
        for page in pages:
            copy = staging / page.notebook.name
            shutil.copyfile(page.notebook, copy)
            staged.append(replace(page, notebook=copy))

        _prepare_environment(run_dir, config.privacy.key_env, TEMPLATE_ROOT, RUN_DIR_ENV)
        gate = AccessGate(tokens, secrets.token_bytes(32), f"relmap_session_{port}")
        heading = tr("serve.index.heading", client=config.client, engagement=config.name, run=run_dir.name)
        options = ServerOptions(staging, staged, gate, log, heading, host, port, pool_size)

        def announce(app: RelmapVoila) -> None:
            base = f"http://{host}:{port}/"
            address = f"{base}?token={tokens[0]}" if generated else base
            echo(tr("serve.ready", run=run_dir.name, url=address))
            echo(tr("serve.token_generated") if generated else tr("serve.token_from_env", variable=TOKEN_ENV))
            for ident in (token_id(token) for token in tokens):
                echo(tr("serve.token_id", token_id=ident))
            for page in staged:
                echo(f"  {base}pages/{page.id}  {page.title_in()}")
            echo(tr("serve.log_file", path=str(log.path)))
            if not is_loopback(host):
                echo(tr("serve.public_host", host=host))
            echo(tr("serve.stop_hint"))

        logger.info("serving run %s of engagement %s on %s:%s", run_dir.name, config.name, host, port)
        app = RelmapVoila(options, on_ready=announce)
        app.initialize([])
        app.start()
        logger.info("dashboard server for run %s stopped", run_dir.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_environment(run_dir: Path, key_env: str, template_root: Path, run_env: str) -> None:
    # Dashboard kernels inherit this process's environment. They need the run
    # folder and the template path, and neither the serve token nor the
    # pseudonym key, so both are removed before any kernel starts.
    os.environ[run_env] = str(run_dir)
    os.environ.pop(TOKEN_ENV, None)
    os.environ.pop(key_env, None)
    paths = [str(template_root), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
