"""Start the dashboards: ``python -m dashboards.serve [extra panel serve args]``.

Runs ``panel serve`` on every page in ``pages/`` on ``HPCPERF_WEB_ADDRESS``
(default loopback), port ``HPCPERF_WEB_PORT`` (default 5006), with ``/``
serving the job list; ``HPCPERF_WEB_ORIGINS`` adds the public host names
a proxy serves it under. Sessions are always signed, with a key derived
from ``HPCPERF_WEB_SECRET`` (else a secret made on first start under
``HPCPERF_HOME``); ``dashboards.server`` adds the identity checks. The
repository root goes on ``PYTHONPATH`` so the pages import ``dashboards``
and ``hpcperfstats`` however the process was started. Runs in the
foreground (``exec``), so whoever started it stops it with a signal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dashboards import auth
from hpcperfstats.config import env

PAGES_DIR = Path(__file__).resolve().parent / "pages"
REPO = PAGES_DIR.parent.parent
INDEX = "jobs"


def port() -> int:
    return int(env("WEB_PORT"))


def address() -> str:
    """Interface to listen on: loopback by default; ``0.0.0.0`` in a container."""
    return env("WEB_ADDRESS")


def origins() -> list[str]:
    """Extra WebSocket origins (``HPCPERF_WEB_ORIGINS``, comma-separated ``host[:port]``).

    Bokeh refuses a session's WebSocket from any origin not listed, so behind
    a proxy the public name the browser uses must be here.
    """
    raw = env("WEB_ORIGINS") or ""
    return [o.strip() for o in raw.split(",") if o.strip()]


def command(web_port: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The server command line (without the interpreter): ``panel serve`` options
    for ``dashboards.server``, which adds the identity checks."""
    web_port = web_port or port()
    pages = sorted(str(p) for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))
    return [
        "-m", "dashboards.server", *pages,
        "--address", address(), "--port", str(web_port),
        "--allow-websocket-origin", f"127.0.0.1:{web_port}",
        "--allow-websocket-origin", f"localhost:{web_port}",
        *(arg for origin in origins() for arg in ("--allow-websocket-origin", origin)),
        "--index", INDEX,
        # every session token is signed with the server's key (BOKEH_SECRET_KEY)
        "--session-ids", "signed",
        # session tokens travel in the page: the proxy's secret and the OAuth
        # tokens never go into them (pages need only the signed user cookies)
        "--exclude-headers", *_header_forms(auth.proxy_secret_header()), "Authorization",
        "--exclude-cookies", "access_token", "refresh_token",
        *auth_args(),
        *(extra or []),
    ]


def _header_forms(name: str) -> list[str]:
    """A header name as written and as Tornado spells it (Bokeh's exclusion is exact)."""
    return list(dict.fromkeys([name, "-".join(w.capitalize() for w in name.split("-"))]))


def auth_args() -> list[str]:
    """The ``panel serve`` options for the configured ``HPCPERF_AUTH`` mode.

    ``header`` and ``basic`` need none: ``dashboards.server`` installs their
    providers (header mode refuses to start without ``HPCPERF_PROXY_SECRET``;
    basic mode without a users file of hashes). ``oauth`` takes the provider
    from ``HPCPERF_OAUTH_PROVIDER``; key, secret and endpoints stay in
    Panel's ``PANEL_OAUTH_*`` variables so secrets never reach argv.
    """
    mode = auth.mode()
    if mode == "header" and not auth.proxy_secret():
        raise SystemExit("HPCPERF_AUTH=header needs HPCPERF_PROXY_SECRET: the secret the "
                         f"proxy sends in {auth.proxy_secret_header()} (see docs/security.md)")
    if mode == "header" and len(auth.proxy_secret() or "") < 32:
        raise SystemExit("HPCPERF_PROXY_SECRET must be at least 32 characters")
    if mode == "basic" and not env("BASIC_AUTH_FILE"):
        raise SystemExit("HPCPERF_AUTH=basic needs HPCPERF_BASIC_AUTH_FILE: a users file "
                         "made with `hpcperf user add NAME`")
    if mode == "oauth":
        provider = env("OAUTH_PROVIDER")
        return ["--oauth-provider", provider, "--oauth-expiry-days", str(auth.COOKIE_DAYS)]
    return []


def environment() -> dict[str, str]:
    """The server's environment: secrets travel here, never in argv (world-readable)."""
    env = dict(os.environ)
    paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    secret = auth.web_secret()
    env["BOKEH_SECRET_KEY"] = auth.derived_key("bokeh-session", secret)
    env["BOKEH_SIGN_SESSIONS"] = "true"
    # Panel signs the sign-in cookies with it (all processes share the web secret)
    env["PANEL_COOKIE_SECRET"] = auth.derived_key("panel-cookie", secret)
    env["HPCPERF_WEB_SECRET"] = secret
    if auth.mode() == "oauth":
        from dashboards import oidc

        env = oidc.panel_environment(env)
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = [sys.executable, *command(extra=argv)]
    env = environment()
    print(" ".join(args), flush=True)
    os.execve(sys.executable, args, env)
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
