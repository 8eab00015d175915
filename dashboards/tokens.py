"""Per-user API tokens for scripts: made and revoked by a command, stored hashed.

A token reads ``hpst_<id>_<secret>``: the id finds the row, the secret (32
random bytes) is compared by its SHA-256 in constant time. Only the hash is
stored and the token is printed once, when it is made; a revoked token is
refused from that moment. A fast hash suffices: the secret is random, not a
password a person chose, so guessing it is hopeless whatever the hash costs.

``hpcperf api-token create <user> [--note TEXT]``, ``revoke <id>``, ``list``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys

import psycopg

from hpcperfstats.config import settings

PREFIX = "hpst_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(conn: psycopg.Connection, user: str, note: str = "") -> str:
    """A new token for ``user``: returned once, stored only as a hash."""
    from dashboards.auth import plain_name

    if not user.strip() or not plain_name(user):
        raise ValueError(f"not a user name: {user!r}")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute("INSERT INTO api_tokens (cluster, token_id, username, token_hash, note)"
                     " VALUES (%s, %s, %s, %s, %s)",
                     (settings().cluster, token_id, user, _hash(secret), note or None))
    return f"{PREFIX}{token_id}_{secret}"


def revoke(conn: psycopg.Connection, token_id: str) -> bool:
    """Refuse the token from now on; False if there was no such live token."""
    with conn.transaction():
        cur = conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE cluster = %s"
                           " AND token_id = %s AND revoked_at IS NULL",
                           (settings().cluster, token_id))
    return cur.rowcount == 1


def user_of(conn: psycopg.Connection, token: str) -> str | None:
    """The user a presented token belongs to, or None (malformed, unknown, revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    token_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or not token_id or not secret:
        return None
    row = conn.execute("SELECT username, token_hash FROM api_tokens WHERE cluster = %s"
                       " AND token_id = %s AND revoked_at IS NULL",
                       (settings().cluster, token_id)).fetchone()
    if row is None or not hmac.compare_digest(row[1], _hash(secret)):
        return None
    # last use to the minute: a script polling the API does not write on every call
    cur = conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE cluster = %s"
                       " AND token_id = %s AND (last_used_at IS NULL"
                       " OR last_used_at < now() - interval '1 minute')",
                       (settings().cluster, token_id))
    if cur.rowcount:
        conn.commit()
    return row[0]


def main(argv: list[str] | None = None) -> int:
    from hpcperfstats.db.connect import connect

    parser = argparse.ArgumentParser(prog="hpcperf api-token",
                                     description="API tokens for scripts (stored hashed)")
    sub = parser.add_subparsers(dest="action", required=True)
    make = sub.add_parser("create", help="make a token for a user; printed once")
    make.add_argument("user")
    make.add_argument("--note", default="", help="what the token is for")
    gone = sub.add_parser("revoke", help="refuse a token from now on")
    gone.add_argument("token_id")
    sub.add_parser("list", help="tokens: id, user, note, made, last used, revoked")
    args = parser.parse_args(argv)
    with connect() as conn:
        if args.action == "create":
            print(create(conn, args.user, args.note))
        elif args.action == "revoke":
            if not revoke(conn, args.token_id):
                print(f"no live token {args.token_id!r}", file=sys.stderr)
                return 1
        else:
            for row in conn.execute(
                    "SELECT token_id, username, coalesce(note, ''), created_at, last_used_at,"
                    " revoked_at FROM api_tokens WHERE cluster = %s ORDER BY created_at",
                    (settings().cluster,)):
                print("\t".join("-" if v is None else str(v) for v in row))
    return 0
