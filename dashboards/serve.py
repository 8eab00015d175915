"""Start the dashboards: ``python -m dashboards.serve [extra panel serve args]``.

Runs ``panel serve`` on every page in ``pages/`` on ``HPCPERF_WEB_ADDRESS``
(default loopback), port ``HPCPERF_WEB_PORT`` (default 5006), with ``/``
serving the job list; ``HPCPERF_WEB_ORIGINS`` adds the public host names
a proxy serves it under. The
repository root goes on ``PYTHONPATH`` so the pages import ``dashboards``
and ``hpcperfstats`` however the process was started. Runs in the
foreground (``exec``), so whoever started it stops it with a signal.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from dashboards import auth

PAGES_DIR = Path(__file__).resolve().parent / "pages"
REPO = PAGES_DIR.parent.parent
INDEX = "jobs"
LOGIN_TEMPLATE = PAGES_DIR.parent / "login.html"


def port() -> int:
    return int(os.environ.get("HPCPERF_WEB_PORT") or 5006)


def address() -> str:
    """Interface to listen on: loopback by default; ``0.0.0.0`` in a container."""
    return os.environ.get("HPCPERF_WEB_ADDRESS") or "127.0.0.1"


def origins() -> list[str]:
    """Extra WebSocket origins (``HPCPERF_WEB_ORIGINS``, comma-separated ``host[:port]``).

    Bokeh refuses a session's WebSocket from any origin not listed, so behind
    a proxy the public name the browser uses must be here.
    """
    raw = os.environ.get("HPCPERF_WEB_ORIGINS") or ""
    return [o.strip() for o in raw.split(",") if o.strip()]


def command(web_port: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The ``panel serve`` command line (without the interpreter)."""
    web_port = web_port or port()
    pages = sorted(str(p) for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))
    return [
        "-m", "panel", "serve", *pages,
        "--address", address(), "--port", str(web_port),
        "--allow-websocket-origin", f"127.0.0.1:{web_port}",
        "--allow-websocket-origin", f"localhost:{web_port}",
        *(arg for origin in origins() for arg in ("--allow-websocket-origin", origin)),
        "--index", INDEX,
        *auth_args(),
        *(extra or []),
    ]


def auth_args() -> list[str]:
    """The ``panel serve`` options for the configured ``HPCPERF_AUTH`` mode.

    ``header`` needs none: the proxy authenticates and the pages read its
    header. ``oauth`` takes the provider from ``HPCPERF_OAUTH_PROVIDER`` (or
    Panel's ``PANEL_OAUTH_PROVIDER``); key, secret and extra parameters stay
    in Panel's ``PANEL_OAUTH_*`` variables so secrets never reach argv.
    """
    mode = auth.mode()
    if mode == "basic":
        path = os.environ.get("HPCPERF_BASIC_AUTH_FILE")
        if not path or not Path(path).is_file():
            raise SystemExit("HPCPERF_AUTH=basic needs HPCPERF_BASIC_AUTH_FILE: a JSON file "
                             '{"user": "password", ...}')
        return ["--basic-auth", path, "--basic-login-template", str(LOGIN_TEMPLATE)]
    if mode == "oauth":
        provider = os.environ.get("HPCPERF_OAUTH_PROVIDER")
        args = ["--oauth-provider", provider] if provider else []
        return args
    return []


def environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if auth.mode() in ("basic", "oauth") and not env.get("PANEL_COOKIE_SECRET"):
        # Panel signs the sign-in cookie with it; through the environment, not argv
        # (argv is world-readable). A random one signs everyone out on restart.
        env["PANEL_COOKIE_SECRET"] = (env.get("HPCPERF_COOKIE_SECRET")
                                      or secrets.token_urlsafe(32))
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = [sys.executable, *command(extra=argv)]
    print(" ".join(args), flush=True)
    os.execve(sys.executable, args, environment())
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
