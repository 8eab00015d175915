"""OpenID Connect id tokens: checked against the provider's own keys on every request.

Panel's OAuth login stores the id token it got from the token endpoint in a
signed cookie but never checks it again, so a sign-in stays valid as long
as the cookie does (a day). Here every request's id token must carry the
provider's signature (keys from its JWKS, found through discovery at
``HPCPERF_OAUTH_ISSUER``), our client id as audience, that issuer, and an
``exp`` in the future: an expired or altered token is refused and the
browser goes back to the provider to sign in.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from hpcperfstats.config import env

log = logging.getLogger("hpcperf.auth")

#: Signature algorithms accepted from a provider (never "none", never HMAC).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
#: Seconds of clock difference tolerated between us and the provider.
LEEWAY_S = 30


def issuer() -> str:
    value = (env("OAUTH_ISSUER") or "").rstrip("/")
    if not value:
        raise SystemExit("HPCPERF_AUTH=oauth needs HPCPERF_OAUTH_ISSUER: the provider's "
                         "issuer URL (its /.well-known/openid-configuration is read)")
    return value


def user_claim() -> str:
    return env("OAUTH_USER_CLAIM")


def groups_claim() -> str:
    return env("OAUTH_GROUPS_CLAIM")


@lru_cache(maxsize=4)
def discovery(issuer_url: str) -> dict[str, Any]:
    """The provider's metadata (endpoints, JWKS address), read once per process."""
    url = f"{issuer_url}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (configured URL)
        meta = json.load(response)
    if meta.get("issuer", "").rstrip("/") != issuer_url:
        raise ValueError(f"{url} names issuer {meta.get('issuer')!r}, not {issuer_url!r}")
    return meta


@lru_cache(maxsize=4)
def _jwks_client(jwks_uri: str):
    import jwt

    return jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=300, timeout=10)


def verify(token: str) -> dict[str, Any]:
    """The claims of an id token this provider signed for us; raises ``jwt.PyJWTError``."""
    import jwt

    meta = discovery(issuer())
    key = _jwks_client(meta["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token, key.key, algorithms=ALGORITHMS, audience=os.environ.get("PANEL_OAUTH_KEY"),
        issuer=meta["issuer"], leeway=LEEWAY_S,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


def claims_from_cookie(cookies: Mapping[str, str]) -> dict[str, Any] | None:
    """The verified claims of the id token in Panel's signed cookie, or None."""
    import jwt

    from dashboards.auth import signed_cookie

    raw = signed_cookie(cookies, "id_token")
    if raw is None:
        return None
    key = os.environ.get("PANEL_OAUTH_ENCRYPTION")
    try:
        if key:
            from cryptography.fernet import Fernet

            raw = Fernet(key.encode()).decrypt(raw)
        return verify(raw.decode("ascii"))
    except (jwt.PyJWTError, ValueError, UnicodeDecodeError) as exc:
        log.warning("id token refused: %s", exc)
        return None
    except Exception as exc:  # the provider unreachable: nobody is let in
        log.warning("id token not checkable (provider keys unavailable): %s", exc)
        return None


def user_of(claims: Mapping[str, Any]) -> str | None:
    value = claims.get(user_claim())
    return str(value) if value else None


def groups_of(claims: Mapping[str, Any]) -> frozenset[str]:
    value = claims.get(groups_claim()) or []
    if isinstance(value, str):
        return frozenset([value])
    return frozenset(str(g) for g in value)


def panel_environment(env: dict[str, str]) -> dict[str, str]:
    """Panel's generic-provider settings from discovery, unless the site set them."""
    meta = discovery(issuer())
    out = dict(env)
    out.setdefault("PANEL_OAUTH_AUTHORIZE_URL", meta["authorization_endpoint"])
    out.setdefault("PANEL_OAUTH_TOKEN_URL", meta["token_endpoint"])
    if meta.get("end_session_endpoint"):
        out.setdefault("PANEL_OAUTH_LOGOUT_URL", meta["end_session_endpoint"])
    out.setdefault("PANEL_OAUTH_JWT_USER", user_claim())
    out.setdefault("PANEL_OAUTH_SCOPE", "openid,profile,email,groups")
    return out
