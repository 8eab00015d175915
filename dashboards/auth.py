"""Who is looking: the viewer of a session, from the configured auth mode.

``HPCPERF_AUTH`` picks how people are identified:

- ``none``   (default, meant for the demo on loopback): everyone is staff.
- ``basic``  Panel's login page over a JSON credentials file
  (``HPCPERF_BASIC_AUTH_FILE``: ``{"user": "password"}``), for small sites and tests.
- ``oauth``  Panel's OAuth/OIDC providers (``HPCPERF_OAUTH_PROVIDER``; key and
  secret in Panel's own ``PANEL_OAUTH_*`` variables); groups from the id token.
- ``header`` a user (and groups) header set by the reverse proxy in front;
  only safe when nothing but the proxy can reach the port.

Staff are the names in ``HPCPERF_STAFF`` (comma-separated) or members of
``HPCPERF_STAFF_GROUP``. Everyone else is a researcher and sees their own
jobs, plus their accounts' jobs when ``HPCPERF_SHARE_ACCOUNTS=1``. The rule
is applied in every query (``data.scope_clause``), not by hiding links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MODES = ("none", "basic", "oauth", "header")


@dataclass(frozen=True)
class Viewer:
    """A session's identity. ``user`` None with ``staff`` False sees nothing."""

    user: str | None
    staff: bool
    share_accounts: bool = False

    @property
    def label(self) -> str:
        if self.user is None:
            return "not signed in"
        return f"{self.user} (staff)" if self.staff else self.user


def mode() -> str:
    value = (os.environ.get("HPCPERF_AUTH") or "none").strip().lower()
    if value not in MODES:
        raise ValueError(f"HPCPERF_AUTH={value!r}: expected one of {', '.join(MODES)}")
    return value


def _names(variable: str) -> set[str]:
    return {n.strip() for n in (os.environ.get(variable) or "").split(",") if n.strip()}


def _share() -> bool:
    return (os.environ.get("HPCPERF_SHARE_ACCOUNTS") or "0").strip().lower() in ("1", "true", "yes")


def resolve(user: str | None, groups: set[str] | frozenset[str] = frozenset()) -> Viewer:
    """The viewer for an authenticated name and its groups (pure: testable)."""
    if mode() == "none":
        return Viewer("anonymous", staff=True)
    user = (user or "").strip() or None
    if user is None or user == "guest":
        return Viewer(None, staff=False)
    staff_group = (os.environ.get("HPCPERF_STAFF_GROUP") or "").strip()
    staff = user in _names("HPCPERF_STAFF") or bool(staff_group and staff_group in groups)
    return Viewer(user, staff=staff, share_accounts=_share())


def _header_groups(value: str | None) -> set[str]:
    return {g.strip() for g in (value or "").replace(";", ",").split(",") if g.strip()}


def current() -> Viewer:
    """The viewer of the current Panel session."""
    import panel as pn

    current_mode = mode()
    if current_mode == "none":
        return resolve(None)
    if current_mode == "header":
        headers = {k.lower(): v for k, v in (pn.state.headers or {}).items()}
        user_header = (os.environ.get("HPCPERF_AUTH_HEADER") or "X-Forwarded-User").lower()
        group_header = (os.environ.get("HPCPERF_GROUPS_HEADER") or "X-Forwarded-Groups").lower()
        return resolve(headers.get(user_header), _header_groups(headers.get(group_header)))
    groups: set[str] = set()
    if current_mode == "oauth":
        info = pn.state.user_info or {}
        claim = info.get("groups") or []
        groups = {claim} if isinstance(claim, str) else {str(g) for g in claim}
    return resolve(pn.state.user, groups)
