"""Who is looking: the identity the server verified, and the viewer it makes.

``HPCPERF_AUTH`` picks how people are identified:

- ``none``   (default, meant for the demo on loopback): everyone is staff.
- ``basic``  our sign-in page over a users file of bcrypt hashes
  (``HPCPERF_BASIC_AUTH_FILE``, written by ``hpcperf user add``).
- ``oauth``  Panel's OAuth/OIDC login (``HPCPERF_OAUTH_PROVIDER``); the id
  token is checked against the provider's keys on every request
  (``dashboards.oidc``); groups come from its ``groups`` claim.
- ``header`` a user (and groups) header set by an authenticating reverse
  proxy, trusted only on requests that carry the proxy's shared secret
  (``HPCPERF_PROXY_SECRET`` in ``HPCPERF_PROXY_SECRET_HEADER``).

Identity is only ever what the server verified: a signed cookie, an id
token the provider signed, or a proxy that proved itself. ``identify`` is the
one function that turns a request's headers and cookies into an identity;
the server runs it on every live request (``dashboards.server``) and on the
signed session token a WebSocket presents, and refuses the WebSocket when
the two differ. Pages call ``current``, which reads the session's (signed)
token payload the same way.

Staff are the names in ``HPCPERF_STAFF`` (comma-separated) or members of
``HPCPERF_STAFF_GROUP``. Everyone else is a researcher and sees their own
jobs, plus their accounts' jobs when ``HPCPERF_SHARE_ACCOUNTS=1``. The rule
is applied in every query (``data.scope_clause``), not by hiding links.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from hpcperfstats.config import cluster_name, env

MODES = ("none", "basic", "oauth", "header")
#: The secret file made on first start when HPCPERF_WEB_SECRET is not set.
SECRET_FILE = "web-secret"
#: Days a sign-in cookie stays valid (Panel's ``oauth_expiry``).
COOKIE_DAYS = 1

log = logging.getLogger("hpcperf.auth")


@dataclass(frozen=True)
class Viewer:
    """A session's identity. ``user`` None with ``staff`` False sees nothing."""

    user: str | None
    staff: bool
    share_accounts: bool = False
    #: the cluster the viewer looks at (the selector, ``?cluster=``); empty: the
    #: deployment's default (``HPCPERF_CLUSTER``). Every query through
    #: ``data.scope_clause`` sees this cluster's rows only.
    cluster: str = ""

    @property
    def label(self) -> str:
        if self.user is None:
            return "not signed in"
        return f"{self.user} (staff)" if self.staff else self.user


@dataclass(frozen=True)
class Identity:
    """A verified user name and the groups the verifier vouched for."""

    user: str
    groups: frozenset[str] = field(default_factory=frozenset)


class Refused(Exception):
    """A request that must be answered 403 (e.g. a proxy that did not prove itself)."""


def mode() -> str:
    value = env("AUTH").lower()
    if value not in MODES:
        raise ValueError(f"HPCPERF_AUTH={value!r}: expected one of {', '.join(MODES)}")
    return value


def _names(name: str) -> set[str]:
    return {n.strip() for n in (env(name) or "").split(",") if n.strip()}


def _share() -> bool:
    return env("SHARE_ACCOUNTS").lower() in ("1", "true", "yes")


def resolve(user: str | None, groups: set[str] | frozenset[str] = frozenset()) -> Viewer:
    """The viewer for an authenticated name and its groups (pure: testable)."""
    if mode() == "none":
        return Viewer("anonymous", staff=True)
    user = (user or "").strip() or None
    if user is None or user == "guest":
        return Viewer(None, staff=False)
    staff_group = env("STAFF_GROUP") or ""
    staff = user in _names("STAFF") or bool(staff_group and staff_group in groups)
    return Viewer(user, staff=staff, share_accounts=_share())


def _header_groups(value: str | None) -> frozenset[str]:
    return frozenset(g.strip() for g in (value or "").replace(";", ",").split(",") if g.strip())


# --- secrets ---------------------------------------------------------------------------


def web_secret() -> str:
    """The server's master secret: ``HPCPERF_WEB_SECRET``, else a file under HPCPERF_HOME.

    The file is made on first start (32 random bytes, mode 0600, created
    exclusively so two processes starting at once agree on one secret). Every
    process of one site must share it: it signs the Bokeh sessions and the
    sign-in cookies, so a process with another secret refuses the others'.
    """
    value = env("WEB_SECRET") or ""
    if value:
        if len(value) < 32:
            raise SystemExit("HPCPERF_WEB_SECRET must be at least 32 characters "
                             "(e.g. `openssl rand -hex 32`)")
        return value
    from hpcperfstats.config import settings

    path = settings().home / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    log.warning("made a new web secret in %s (mode 0600); share it with every web process", path)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        raise SystemExit(f"{path} is readable by others: chmod 600 it (it signs every session)")
    value = path.read_text().strip()
    if len(value) < 32:
        raise SystemExit(f"{path} holds no usable secret; delete it to make a new one")
    return value


def derived_key(purpose: str, secret: str | None = None) -> str:
    """A separate key per use (session tokens, cookies), derived from the one secret."""
    secret = secret or web_secret()
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def proxy_secret() -> str | None:
    return env("PROXY_SECRET")


def proxy_secret_header() -> str:
    return env("PROXY_SECRET_HEADER")


def user_header() -> str:
    return env("AUTH_HEADER")


def groups_header() -> str:
    return env("GROUPS_HEADER")


def proxy_verified(headers: Mapping[str, str]) -> bool:
    """Whether a request carries the proxy's shared secret (constant-time compare)."""
    expected = proxy_secret()
    given = _header(headers, proxy_secret_header())
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value if isinstance(value, str) else str(value)
    return None


# --- identity --------------------------------------------------------------------------


def cookie_secret() -> str:
    return derived_key("panel-cookie")


def signed_cookie(cookies: Mapping[str, str], name: str) -> bytes | None:
    """A cookie's value if the server signed it (and it is not too old), else None."""
    from tornado.web import decode_signed_value

    raw = cookies.get(name)
    if not raw:
        return None
    return decode_signed_value(cookie_secret(), name, raw, max_age_days=COOKIE_DAYS)


def identify(headers: Mapping[str, str], cookies: Mapping[str, str], *,
             live: bool) -> Identity | None:
    """The identity a request (``live``) or a signed session token proves, or None.

    ``live`` requests in header mode must carry the proxy's secret, else
    ``Refused``; a session token never holds that secret (it is excluded
    from tokens, which the browser sees) but is signed by this server, which
    checked the secret when it made it.
    """
    current = mode()
    if current == "none":
        return Identity("anonymous")
    if current == "header":
        if live and not proxy_verified(headers):
            raise Refused("request did not come through the proxy (no or wrong proxy secret)")
        user = (_header(headers, user_header()) or "").strip()
        if not user or not plain_name(user):
            return None
        return Identity(user, _header_groups(_header(headers, groups_header())))
    raw = signed_cookie(cookies, "user")
    if not raw:
        return None
    user = raw.decode("utf-8", "replace")
    if not plain_name(user):
        return None
    if current == "basic":
        return Identity(user)
    from dashboards import oidc

    claims = oidc.claims_from_cookie(cookies)
    if claims is None or oidc.user_of(claims) != user:
        return None
    return Identity(user, oidc.groups_of(claims))


def plain_name(text: str) -> bool:
    """No control characters (NUL, newlines) in a name: they never reach SQL or logs."""
    return all(ch >= " " and ch != "\x7f" for ch in text) and len(text) <= 200


def cookies_of(request) -> dict[str, str]:
    """A Tornado request's cookies as plain name -> value."""
    return {name: morsel.value for name, morsel in request.cookies.items()}


def viewer_of(identity: Identity | None) -> Viewer:
    if identity is None:
        return resolve(None)
    return resolve(identity.user, identity.groups)


#: cookie the cluster selector sets, so links between pages keep the cluster
CLUSTER_COOKIE = "hpcperf_cluster"


def on_cluster(viewer: Viewer, asked: str | None) -> Viewer:
    """``viewer`` looking at cluster ``asked`` (``?cluster=`` or the selector's cookie).

    A name the deployment does not serve is kept as asked, so it matches no
    row (an empty page), never silently another cluster's."""
    asked = (asked or "").strip()
    if not asked or len(asked) > 64 or not asked.isprintable():
        return replace(viewer, cluster=cluster_name())
    return replace(viewer, cluster=asked)


def current() -> Viewer:
    """The viewer of the current Panel session, from its signed token payload, on the
    cluster the address (``?cluster=``) or else the selector's cookie names."""
    import panel as pn

    headers = dict(pn.state.headers or {})
    cookies = dict(pn.state.cookies or {})
    raw = (pn.state.session_args or {}).get("cluster")
    asked = raw[0].decode("utf-8", "replace") if raw else cookies.get(CLUSTER_COOKIE)
    try:
        return on_cluster(viewer_of(identify(headers, cookies, live=False)), asked)
    except Refused:
        return Viewer(None, staff=False)
