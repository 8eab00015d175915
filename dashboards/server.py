"""Panel's ``serve`` with the server-side identity checks wired in.

``python -m dashboards.server <panel serve args>`` is what ``dashboards.serve``
execs. Before Panel builds its routes this module:

- gives Bokeh an auth provider for every ``HPCPERF_AUTH`` mode that runs
  ``auth.identify`` on each live request (header mode: a request without the
  proxy's secret is answered 403 and logged);
- puts a guard in front of each page's WebSocket: the session token it
  presents must carry this server's signature, be unexpired, and name the
  same identity as the live upgrade request; else 403, logged;
- refuses session tokens and session ids offered to the HTTP page handlers
  (``?bokeh-token=``, ``Bokeh-Session-Id``): a page is only ever built for
  the identity of the request that asks for it;
- replaces Panel's plain-text basic login with bcrypt hashes and a brake on
  guessing (``dashboards.users``);
- logs the route table at start, so what the server exposes can be audited
  (and is, by the tests);
- answers ``/healthz`` without any identity (``HealthHandler``), so a
  container's health check works in every ``HPCPERF_AUTH`` mode.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import panel.io.server as pn_server
from bokeh.server.auth_provider import AuthProvider
from bokeh.server.urls import per_app_patterns
from bokeh.util.token import check_token_signature, get_token_payload
from panel.auth import BasicAuthProvider, BasicLoginHandler, OAuthProvider, _validate_next_url
from panel.command.serve import Serve
from panel.io.state import state
from tornado.escape import url_escape
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from dashboards import api, auth, users

log = logging.getLogger("hpcperf.auth")


def _where(handler) -> str:
    request = handler.request
    return f"{request.method} {request.path!r} from {request.remote_ip}"


def live_identity(handler) -> auth.Identity | None:
    """``auth.identify`` on a live request; a refused one ends as 403 (and a log line)."""
    try:
        return auth.identify(handler.request.headers, auth.cookies_of(handler.request),
                             live=True)
    except auth.Refused as exc:
        log.warning("refused %s: %s", _where(handler), exc)
        raise HTTPError(403, reason="Forbidden") from None


class ProxyHeaderAuth(AuthProvider):
    """Header mode: the proxy must prove itself on every request and name a user."""

    @property
    def get_user(self):
        def get_user(handler) -> str:
            identity = live_identity(handler)
            if identity is None:
                log.warning("refused %s: the proxy named no user", _where(handler))
                raise HTTPError(403, reason="Forbidden")
            return identity.user
        return get_user

    @property
    def login_url(self) -> str:
        return "/login"  # never reached: get_user answers 403 instead of None


class HashedLoginHandler(BasicLoginHandler):
    """The sign-in form over bcrypt hashes, with failures counted, braked and logged."""

    limiter = users.FailureLimiter()
    _cache: tuple[float, dict[str, str]] | None = None

    @classmethod
    def accounts(cls) -> dict[str, str]:
        """The users file, read again when it changes (``hpcperf user add`` needs no
        restart). A file broken while running is logged and lets nobody in; it
        never stops the server."""
        try:
            path = users.users_file()
            mtime = path.stat().st_mtime
            if cls._cache is None or cls._cache[0] != mtime:
                cls._cache = (mtime, users.load(path))
            return cls._cache[1]
        except (SystemExit, OSError, ValueError) as exc:
            log.error("users file unusable, nobody can sign in: %s", exc)
            return {}

    async def post(self) -> None:
        name = self.get_argument("username", "").strip()
        password = self.get_argument("password", "")
        keys = (f"user:{name}", f"ip:{self.request.remote_ip}")
        wait = self.limiter.blocked_for(*keys)
        if wait > 0:
            log.warning("sign-in refused for %r from %s: too many failures (blocked %.0f s)",
                        name, self.request.remote_ip, wait)
            minutes = max(1, round(wait / 60))
            self._fail(f"Too many failed sign-ins; try again in {minutes} minutes.")
            return
        # bcrypt takes tenths of a second by design: off the event loop, so a flood
        # of sign-ins does not stall every open dashboard
        ok = bool(name) and auth.plain_name(name) and await IOLoop.current().run_in_executor(
            None, users.check, self.accounts(), name, password)
        if ok:
            self.limiter.succeeded(keys[0])
            log.info("signed in %r from %s", name, self.request.remote_ip)
            self.set_current_user(name)
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))
            return
        self.limiter.failed(*keys)
        log.warning("failed sign-in for %r from %s", name, self.request.remote_ip)
        self._fail("Invalid username or password!")

    def _fail(self, message: str) -> None:
        self.redirect(self.request.path + "?error=" + url_escape(message))


class SignedCookieAuth(BasicAuthProvider):
    """Basic mode: the user is the server-signed ``user`` cookie; our login handler."""

    @property
    def get_user(self):
        def get_user(handler) -> str | None:
            identity = live_identity(handler)
            return identity.user if identity else None
        return get_user

    @property
    def login_handler(self):
        HashedLoginHandler._login_endpoint = self._login_endpoint
        HashedLoginHandler._login_template = self._login_template
        return HashedLoginHandler


class VerifiedOAuth(OAuthProvider):
    """OAuth mode: signed cookies and an id token the provider signed, unexpired."""

    @property
    def get_user_async(self):
        async def get_user(handler) -> str | None:
            identity = live_identity(handler)
            return identity.user if identity else None
        return get_user


def token_refusal(handler) -> str | None:
    """Why a WebSocket's session token must be refused, or None when it may open.

    The token must be signed with this server's key, unexpired, and name
    the same identity as the live upgrade request: a token handed to (or
    taken from) one user never opens a session for another.
    """
    parts = [p.strip() for p in handler.request.headers.get("Sec-WebSocket-Protocol", "")
             .split(",")]
    if len(parts) != 2 or parts[0] != "bokeh" or not parts[1]:
        return "no session token"
    token, app = parts[1], handler.application
    try:
        if not check_token_signature(token, secret_key=app.secret_key, signed=app.sign_sessions):
            return "session token not signed by this server"
        payload = get_token_payload(token)
    except Exception as exc:  # malformed base64 or JSON: a forged token
        return f"malformed session token ({type(exc).__name__})"
    now = calendar.timegm(dt.datetime.now(tz=dt.UTC).timetuple())
    if payload.get("session_expiry", 0) <= now:
        return "session token expired"
    try:
        claimed = auth.identify(payload.get("headers") or {}, payload.get("cookies") or {},
                                live=False)
    except auth.Refused as exc:
        return str(exc)
    verified = live_identity(handler)
    if claimed != verified:
        return (f"session token names {_who(claimed)} but the request is "
                f"{_who(verified)}")
    return None


def _who(identity: auth.Identity | None) -> str:
    return "nobody" if identity is None else repr(identity.user)


class GuardedWSHandler(pn_server.WSHandler):
    """Panel's WebSocket handler behind ``token_refusal`` (403 before the upgrade)."""

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
        reason = token_refusal(self)
        if reason:
            log.warning("refused WebSocket %s: %s", _where(self), reason)
            self.set_status(403)
            self.finish()


def _no_client_sessions(handler) -> None:
    """Pages are built for the live request only: client-chosen sessions are refused."""
    if handler.get_argument("bokeh-token", None) or "Bokeh-Session-Id" in handler.request.headers:
        log.warning("refused %s: a client-supplied session token or id", _where(handler))
        raise HTTPError(403, reason="Forbidden")


class GuardedDocHandler(pn_server.DocHandler):
    async def prepare(self) -> None:
        _no_client_sessions(self)
        await super().prepare()
        _ = self.current_user  # header mode: no proxy secret, 403 before anything else


class GuardedAutoloadJsHandler(pn_server.AutoloadJsHandler):
    async def prepare(self) -> None:
        _no_client_sessions(self)
        await super().prepare()
        _ = self.current_user


class HealthHandler(RequestHandler):
    """``GET /healthz``: "ok" while the server answers; needs no identity, reveals nothing.

    The container health check (deploy/compose.yaml) asks the server itself,
    not through the proxy: in header mode every page answers 403 without the
    proxy's secret, and the secret does not belong in a health check's argv.
    """

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write("ok\n")


def install_guards() -> None:
    """Swap Panel's per-page handlers for the guarded ones (before routes are built)."""
    guarded = {pn_server.WSHandler: GuardedWSHandler, pn_server.DocHandler: GuardedDocHandler,
               pn_server.AutoloadJsHandler: GuardedAutoloadJsHandler}
    per_app_patterns[:] = [(path, guarded.get(handler, handler))
                           for path, handler in per_app_patterns]


def auth_provider(kwargs: dict) -> AuthProvider | None:
    """The provider for ``HPCPERF_AUTH``; None keeps Bokeh's (mode ``none``)."""
    current = auth.mode()
    template = str(Path(__file__).resolve().parent / "login.html")
    if current == "header":
        return ProxyHeaderAuth()
    if current == "basic":
        users.load(users.users_file())  # a missing or plain-text file stops the start here
        return SignedCookieAuth(login_endpoint="/login", logout_endpoint="/logout",
                                login_template=template)
    if current == "oauth":
        panel_provider = kwargs.get("auth_provider")
        if panel_provider is None:
            raise SystemExit("HPCPERF_AUTH=oauth: Panel made no OAuth provider")
        provider = VerifiedOAuth(login_endpoint="/login", logout_endpoint="/logout")
        provider._error_template = panel_provider._error_template
        return provider
    return None


def route_table(server) -> list[str]:
    """Every URL pattern the running server answers."""
    rules = server._tornado.wildcard_router.rules
    return [rule.matcher.regex.pattern for rule in rules]


class GuardedServe(Serve):
    """``panel serve`` whose server carries our auth provider and logs its routes."""

    def customize_kwargs(self, args, server_kwargs):
        kwargs = super().customize_kwargs(args, server_kwargs)
        provider = auth_provider(kwargs)
        if provider is not None:
            kwargs["auth_provider"] = provider
        if not kwargs.get("sign_sessions"):
            raise SystemExit("sessions must be signed (--session-ids signed, BOKEH_SECRET_KEY)")
        # the data API: same server, same identity and access rule (dashboards.api)
        kwargs["extra_patterns"] = [*kwargs.get("extra_patterns", []), *api.patterns(),
                                    (r"/healthz", HealthHandler)]
        return kwargs

    def customize_server(self, server):
        server = super().customize_server(server)
        log.info("hpcperf web routes: %s", json.dumps(route_table(server)))
        return server


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.Formatter.converter = time.gmtime
    install_guards()
    parser = argparse.ArgumentParser(prog="hpcperf web")
    command = GuardedServe(parser=parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command.invoke(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
