"""The Voilà application behind ``relmap serve``: one engagement, one run, a token.

Voilà 0.5 serving a folder also serves a file tree, a contents API, any
notebook under the folder and raw files. This module keeps only what a page
needs and puts a gate in front of every route:

- :class:`RelmapApplication` checks every request before routing it: paths
  with ``..``, backslashes, NUL or doubled slashes (also percent-encoded)
  get 404, and a request without a valid token or session cookie gets 403.
  A valid ``?token=`` sets a signed session cookie and redirects to the same
  URL without the token, so the token leaves the address bar.
- Routes: ``/`` (the list of pages), ``/pages/<page-id>`` (one dashboard),
  and Voilà's own static files, kernel channels and shutdown endpoints. There
  is no file tree, no contents API, no ``/voila/files`` and no login page.
- The kernels' websocket handler (Voilà's) forwards only widget (comm) and
  kernel-info messages, so a browser cannot run code; sources are stripped.
- Every page view goes to a JSON-lines log with the time, the page, the run
  and a short hash of the token (its id), never the token itself.

URL isolation does not limit what a kernel can read on disk: run the server
as an operating-system user that can read only this engagement (README).
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, parse_qsl

import tornado.web
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from traitlets.config import Config
from voila.app import Voila
from voila.static_file_handler import AllowListFileHandler
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from relmap_utils.dashboard.pages import PAGE_ID, Page
from relmap_utils.dashboard.render import PLOTLY_ROUTE
from relmap_utils.errors import RunError
from relmap_utils.i18n import tr
from relmap_utils.paths import TEMPLATE_DIR

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "relmap"
# Folder that contains voila/templates/relmap, in the layout of a Jupyter data
# directory, so Voilà finds the template through JUPYTER_PATH.
TEMPLATE_ROOT = TEMPLATE_DIR
SESSION_MAX_AGE_DAYS = 1
# JavaScript extensions a page may load; anything else installed in the
# environment's labextensions folders is ignored.
# jupyterlab-plotly is left out: its renderer throws in Voilà's static
# outputs (it calls setData on a model that has none), and the pages draw
# their charts with plotly.js from PlotlyScriptHandler instead.
EXTENSION_ALLOWLIST = (
    "@voila-dashboards/widgets-manager8",
    "@jupyter-widgets/jupyterlab-manager",
)
# Refused requests written to the page-view log per minute; more are counted.
REFUSED_LOG_LIMIT = 30
_SUSPICIOUS_PATH = re.compile(r"(^|/)\.\.?(/|$)|\\|\x00|//")


def token_id(token: str) -> str:
    """Return the id logged for ``token``: the first 12 hex digits of its SHA-256.

    The id distinguishes tokens in the log without revealing them.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def path_is_clean(path: str) -> bool:
    """Return False for a URL path that could step outside its route.

    The path is percent-decoded up to three times (``%252e`` too) and checked
    for ``.`` or ``..`` segments, backslashes, NUL and empty segments.
    """
    decoded = path
    for _ in range(3):
        if _SUSPICIOUS_PATH.search(decoded):
            return False
        following = unquote(decoded)
        if following == decoded:
            return True
        decoded = following
    return not _SUSPICIOUS_PATH.search(decoded) and unquote(decoded) == decoded


# --------------------------------------------------------------------------- access


class PageViewLog:
    """Append-only JSON-lines log of page views and refused requests.

    Each line has ``time`` (ISO 8601 with UTC offset, in ``timezone``: the
    engagement's time zone, as in the run's manifest and run.log), ``event``
    (``view`` or ``refused``), ``page`` or ``path``, ``run`` and
    ``token_id``. Refused requests are logged at most
    :data:`REFUSED_LOG_LIMIT` times a minute; the next line written gives how
    many were left out. Without ``timezone`` the machine's local zone is used.
    """

    def __init__(self, path: Path, run_id: str, timezone: dt.tzinfo | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self.timezone = timezone
        self._window = 0
        self._refused_in_window = 0
        self._refused_dropped = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, record: dict[str, Any]) -> None:
        now = dt.datetime.now(self.timezone) if self.timezone is not None else dt.datetime.now().astimezone()
        record = {"time": now.isoformat(timespec="seconds"), **record}
        if self._refused_dropped and record.get("event") != "refused_dropped":
            dropped, self._refused_dropped = self._refused_dropped, 0
            self._write({"event": "refused_dropped", "count": dropped, "run": self.run_id})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def view(self, page: str, token: str | None) -> None:
        """Record that the holder of token id ``token`` opened ``page``."""
        self._write({"event": "view", "page": page, "run": self.run_id, "token_id": token})

    def refused(self, path: str, status: int, supplied: str | None) -> None:
        """Record a refused request; ``supplied`` is the id of a wrong token, if one was sent."""
        window = int(time.monotonic() // 60)
        if window != self._window:
            self._window, self._refused_in_window = window, 0
        self._refused_in_window += 1
        if self._refused_in_window > REFUSED_LOG_LIMIT:
            self._refused_dropped += 1
            return
        # Only the path is logged: the query string may carry a token.
        self._write({"event": "refused", "path": path, "status": status, "run": self.run_id, "token_id": supplied})


@dataclass
class AccessGate:
    """Tokens that may open the dashboards, and the signed session cookie that follows a token.

    Parameters
    ----------
    tokens : sequence of str
        Accepted tokens. Each is known by its :func:`token_id`.
    cookie_secret : bytes
        Key that signs session cookies; a new server start makes old cookies invalid.
    cookie_name : str
    """

    tokens: Sequence[str]
    cookie_secret: bytes
    cookie_name: str
    _ids: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ids = {token: token_id(token) for token in self.tokens}

    def check_token(self, supplied: str) -> str | None:
        """Return the id of ``supplied`` when it is an accepted token (constant-time compare)."""
        found = None
        for token, ident in self._ids.items():
            if hmac.compare_digest(token.encode("utf-8"), supplied.encode("utf-8")):
                found = ident
        return found

    def supplied_token(self, request: Any) -> str:
        """Return the token a request carries in ``?token=`` or an ``Authorization: token ...`` header."""
        values = request.query_arguments.get("token")
        if values:
            return values[-1].decode("utf-8", "replace")
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer"):
            return value.strip()
        return ""

    def session(self, request: Any) -> str | None:
        """Return the token id of a valid session cookie on ``request``."""
        morsel = request.cookies.get(self.cookie_name)
        if morsel is None:
            return None
        value = tornado.web.decode_signed_value(
            self.cookie_secret, self.cookie_name, morsel.value, max_age_days=SESSION_MAX_AGE_DAYS
        )
        if value is None:
            return None
        ident = value.decode("utf-8", "replace")
        return ident if ident in self._ids.values() else None

    def authenticate(self, request: Any) -> tuple[str | None, bool]:
        """Return ``(token id, came with a token)`` for ``request``; the id is ``None`` when refused."""
        supplied = self.supplied_token(request)
        if supplied:
            return self.check_token(supplied), True
        return self.session(request), False


class GateIdentityProvider(IdentityProvider):
    """Jupyter identity from the :class:`AccessGate`: the user is the token id.

    The gate has already refused every request without a valid token or
    session, so this only names the user for Jupyter's kernel handlers.
    """

    gate: AccessGate | None = None

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    def get_handlers(self) -> list[tuple[str, object]]:
        # No login or logout page: access is by token link only.
        return []

    def get_user(self, handler: tornado.web.RequestHandler) -> User | None:
        if self.gate is None:
            return None
        ident, _ = self.gate.authenticate(handler.request)
        if ident is None:
            return None
        return User(username=f"token-{ident}", name=f"token {ident}", display_name=f"token {ident}")

    def is_token_authenticated(self, handler: tornado.web.RequestHandler) -> bool:
        return bool(self.gate and self.gate.supplied_token(handler.request))


# --------------------------------------------------------------------------- handlers


def _message_page(title: str, body: str, status: int) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title></head><body style=\"font-family: sans-serif; margin: 3em\">"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(body)}</p><p style=\"color:#6b7280\">HTTP {status}</p>"
        "</body></html>"
    )


class RejectHandler(tornado.web.RequestHandler):
    """Reject every method with a fixed status and a short bilingual page, and log the rejection."""

    def initialize(self, status: int, key: str, log: PageViewLog, supplied: str | None) -> None:
        self.status = status
        self.key = key
        self.page_log = log
        self.supplied = supplied

    def prepare(self) -> None:
        self.page_log.refused(self.request.path, self.status, self.supplied)
        self.set_status(self.status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        title = tr(f"{self.key}.title")
        body = tr(f"{self.key}.body")
        self.finish(_message_page(title, body, self.status))


class TokenRedirectHandler(tornado.web.RequestHandler):
    """Handler that turns a valid ``?token=`` into a session cookie and redirects to the URL without it."""

    def initialize(self, gate: AccessGate, ident: str) -> None:
        self.gate = gate
        self.ident = ident

    def prepare(self) -> None:
        self.set_signed_cookie(
            self.gate.cookie_name,
            self.ident,
            expires_days=None,
            httponly=True,
            samesite="Strict",
            path="/",
        )
        query = [(name, value) for name, value in parse_qsl(self.request.query) if name != "token"]
        target = self.request.path + ("?" + urlencode(query) if query else "")
        self.set_header("Cache-Control", "no-store")
        self.redirect(target)


class IndexHandler(JupyterHandler):
    """``/``: the pages of the run, in the page language."""

    def initialize(self, pages: Sequence[Page], log: PageViewLog, heading: str) -> None:
        self.pages = pages
        self.page_log = log
        self.heading = heading

    async def get(self) -> None:
        self.page_log.view("index", _user_token_id(self))
        items = "".join(
            f'<li><a href="pages/{html.escape(page.id)}">{html.escape(page.title_in())}</a></li>' for page in self.pages
        )
        title = tr("serve.index.title")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title></head><body style=\"font-family: 'Microsoft YaHei', 'Noto Sans CJK SC', "
            f"sans-serif; margin: 2em\"><h1>{html.escape(title)}</h1><p>{html.escape(self.heading)}</p>"
            f"<ul>{items}</ul></body></html>"
        )


class PageHandler(TornadoVoilaHandler):
    """``/pages/<page-id>``: renders one dashboard of the run through Voilà."""

    def initialize(self, **kwargs: Any) -> None:
        self.pages = {page.id: page for page in kwargs.pop("pages")}
        self.page_log: PageViewLog = kwargs.pop("log")
        super().initialize(**kwargs)

    @tornado.web.authenticated
    async def get(self, page_id: str = "") -> None:  # type: ignore[override]
        page = self.pages.get(page_id)
        if page is None:
            raise tornado.web.HTTPError(404)
        self.page_log.view(page.id, _user_token_id(self))
        async for markup in self.get_generator(path=page.notebook.name):
            self.write(markup)
            self.flush()


class PlotlyScriptHandler(JupyterHandler):
    """Serves the plotly.min.js of the installed plotly package, which the page's charts load."""

    _content: bytes | None = None

    async def get(self) -> None:
        if PlotlyScriptHandler._content is None:
            import plotly

            PlotlyScriptHandler._content = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(PlotlyScriptHandler._content)


def _user_token_id(handler: JupyterHandler) -> str | None:
    user = handler.current_user
    username = getattr(user, "username", "") or ""
    return username.removeprefix("token-") or None


# --------------------------------------------------------------------------- application


class RelmapApplication(tornado.web.Application):
    """Tornado application that authenticates and sanity-checks every request before routing it."""

    gate: AccessGate
    page_log: PageViewLog

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        if not path_is_clean(request.path):
            return self.get_handler_delegate(
                request, RejectHandler, {"status": 404, "key": "serve.not_found", "log": self.page_log, "supplied": None}
            )
        ident, with_token = self.gate.authenticate(request)
        if ident is None:
            supplied = self.gate.supplied_token(request)
            return self.get_handler_delegate(
                request,
                RejectHandler,
                {
                    "status": 403,
                    "key": "serve.refused",
                    "log": self.page_log,
                    "supplied": token_id(supplied) if supplied else None,
                },
            )
        is_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if with_token and request.method in ("GET", "HEAD") and not is_websocket and "token" in request.query_arguments:
            return self.get_handler_delegate(request, TokenRedirectHandler, {"gate": self.gate, "ident": ident})
        return super().find_handler(request, **kwargs)


@dataclass
class ServerOptions:
    """Settings of :class:`RelmapVoila`: the pages, the access gate, the address and the kernel pool.

    Attributes
    ----------
    pages_dir : Path
        Folder holding only the notebooks of the pages to serve.
    pages : list of Page
        The pages, with ``notebook`` inside ``pages_dir``.
    gate : AccessGate
    page_log : PageViewLog
    heading : str
        Line under the title of the page list (client, engagement, run).
    host, port : str, int
    pool_size : int
        Pre-started kernels kept ready per page; 0 starts a kernel per view.
    cull_idle_seconds : int
        Kernels of closed or idle pages are shut down after this many seconds.
    """

    pages_dir: Path
    pages: list[Page]
    gate: AccessGate
    page_log: PageViewLog
    heading: str
    host: str = "127.0.0.1"
    port: int = 8866
    pool_size: int = 2
    cull_idle_seconds: int = 900


def voila_config(options: ServerOptions) -> Config:
    """Return the traitlets configuration of the Voilà application."""
    config = Config()
    config.Voila.ip = options.host
    config.Voila.port = options.port
    config.Voila.port_retries = 0
    config.Voila.open_browser = False
    config.Voila.root_dir = str(options.pages_dir)
    # No voila.json / voila.py from the working folder or Jupyter's config
    # folders: they could switch the file tree or another template back on.
    config.Voila.config_file_paths = []
    config.Voila.cookie_secret = options.gate.cookie_secret
    config.Voila.identity_provider_class = GateIdentityProvider
    config.VoilaConfiguration.template = TEMPLATE_NAME
    config.VoilaConfiguration.theme = "light"
    config.VoilaConfiguration.allow_template_override = "NO"
    config.VoilaConfiguration.allow_theme_override = "NO"
    config.VoilaConfiguration.strip_sources = True
    config.VoilaConfiguration.show_tracebacks = False
    config.VoilaConfiguration.file_allowlist = []
    config.VoilaConfiguration.extension_allowlist = list(EXTENSION_ALLOWLIST)
    config.VoilaConfiguration.preheat_kernel = options.pool_size > 0
    config.VoilaConfiguration.default_pool_size = options.pool_size
    # Notebook trust is not used (sources are stripped); an in-memory key and
    # database keep the server from writing into the user's home folder.
    config.NotebookNotary.secret = secrets.token_bytes(32)
    config.NotebookNotary.db_file = ":memory:"
    config.MappingKernelManager.cull_idle_timeout = options.cull_idle_seconds
    config.MappingKernelManager.cull_interval = 60
    return config


class RelmapVoila(Voila):
    """Voilà restricted to the pages of one run (see the module docstring)."""

    def __init__(self, options: ServerOptions, on_ready: Callable[["RelmapVoila"], None] | None = None) -> None:
        super().__init__(config=voila_config(options))
        self.options = options
        self.on_ready = on_ready

    def init_settings(self) -> dict[str, Any]:
        settings = super().init_settings()
        self.identity_provider.gate = self.options.gate
        return settings

    def init_handlers(self) -> list[Any]:
        dropped = (AllowListFileHandler, TornadoVoilaTreeHandler, TornadoVoilaHandler, VoilaContentsHandler)
        handlers = [spec for spec in super().init_handlers() if spec[1] not in dropped]
        voila_kwargs = {"template_paths": self.template_paths, "config": self.config,
                        "voila_configuration": self.voila_configuration}  # fmt: skip
        page_pattern = PAGE_ID.pattern.strip("^$")
        handlers.append((r"/pages/(" + page_pattern + ")", PageHandler,
                         {**voila_kwargs, "pages": self.options.pages, "log": self.options.page_log}))  # fmt: skip
        handlers.append((r"/" + PLOTLY_ROUTE.replace(".", r"\."), PlotlyScriptHandler))
        handlers.append((r"/", IndexHandler,
                         {"pages": self.options.pages, "log": self.options.page_log, "heading": self.options.heading}))  # fmt: skip
        return handlers

    def start(self) -> None:
        """Build the application and serve until the process is stopped."""
        import tempfile

        self.connection_dir = tempfile.mkdtemp(prefix="relmap_voila_", dir=self.connection_dir_root)
        settings = self.init_settings()
        self.app = RelmapApplication(**settings)
        self.app.gate = self.options.gate
        self.app.page_log = self.options.page_log
        self.app.settings.update(self.tornado_settings)
        self.app.add_handlers(".*$", self.init_handlers())
        self.listen()

    def listen(self) -> None:
        """Listen on exactly the configured host and port, then run the event loop."""
        import tornado.ioloop

        try:
            self.app.listen(self.port, self.ip)
        except OSError as error:
            self.stop()
            if error.errno == errno.EADDRINUSE:
                raise RunError("serve.port_in_use", host=self.ip, port=self.port) from None
            raise RunError("serve.cannot_listen", host=self.ip, port=self.port, detail=str(error)) from None
        if self.on_ready is not None:
            self.on_ready(self)
        self.ioloop = tornado.ioloop.IOLoop.current()
        try:
            self.ioloop.start()
        except KeyboardInterrupt:
            logger.info("stopping the dashboard server")
        finally:
            self.stop()
