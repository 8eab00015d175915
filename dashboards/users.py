"""Basic-mode accounts: a users file of bcrypt hashes, and a brake on guessing.

The file (``HPCPERF_BASIC_AUTH_FILE``) is JSON ``{"user": "$2b$12$..."}``,
mode 0600, written only by ``hpcperf user add|remove``; a plain-text
password in it stops the server at start. Failed sign-ins are counted per
user name and per client address: after ``MAX_FAILURES`` in ``WINDOW_S``
seconds, that name or address is refused (even with the right password)
until the window has passed, and every failure is logged.

    hpcperf user add alice          # asks for the password twice
    hpcperf user add alice --password-stdin < pw.txt
    hpcperf user remove alice
    hpcperf user list
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

import bcrypt

from hpcperfstats.config import env

#: bcrypt work factor: ~0.4 s per check on our loaded 2-core machine; a stolen file
#: costs an attacker as much per guess.
ROUNDS = 12
#: bcrypt reads at most 72 bytes; longer passwords are refused, not silently cut.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8
MAX_FAILURES = 5
WINDOW_S = 900.0
# compared against when the user is unknown, so both answers take as long
_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))


def hash_password(password: str, rounds: int = ROUNDS) -> str:
    data = password.encode()
    if len(data) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password longer than {MAX_PASSWORD_BYTES} bytes")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password shorter than {MIN_PASSWORD_CHARS} characters")
    return bcrypt.hashpw(data, bcrypt.gensalt(rounds)).decode()


def is_hash(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("$2b$", "$2a$", "$2y$")) \
        and len(value) == 60


def load(path: Path) -> dict[str, str]:
    """The users file; refuses plain-text passwords and files others can read."""
    if not path.is_file():
        raise SystemExit(f"users file {path} not found: create it with `hpcperf user add NAME`")
    if path.stat().st_mode & 0o077:
        raise SystemExit(f"users file {path} is readable by others: chmod 600 it")
    try:
        users = json.loads(path.read_text() or "{}")
    except ValueError as exc:
        raise SystemExit(f"users file {path} is not JSON: {exc}") from None
    if not isinstance(users, dict):
        raise SystemExit(f"users file {path}: expected a JSON object of user -> bcrypt hash")
    plain = sorted(name for name, value in users.items() if not is_hash(value))
    if plain:
        raise SystemExit(f"users file {path}: {', '.join(plain)} not stored as bcrypt hashes; "
                         "set their passwords again with `hpcperf user add NAME`")
    return users


def check(users: dict[str, str], user: str, password: str) -> bool:
    """Whether the password matches the user's hash (constant work for unknown users)."""
    data = password.encode("utf-8", "replace")
    if len(data) > MAX_PASSWORD_BYTES:
        data = data[:0]  # never matches; bcrypt 5 refuses long input outright
    stored = users.get(user)
    ok = bcrypt.checkpw(data, stored.encode() if stored else _DUMMY)
    return bool(stored) and ok


def save(path: Path, users: dict[str, str]) -> None:
    """Write atomically with mode 0600 (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(dict(sorted(users.items())), out, indent=1)
        out.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class FailureLimiter:
    """Sliding-window count of failed sign-ins per key (user name, client address)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        times = self._failures[key]
        while times and self.clock() - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return deque()
        return times

    def blocked_for(self, *keys: str) -> float:
        """Seconds until every key may try again (0: none is blocked)."""
        wait = 0.0
        for key in keys:
            times = self._recent(key)
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - self.clock())
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._failures[key].append(now)

    def succeeded(self, user_key: str) -> None:
        self._failures.pop(user_key, None)


def users_file(path: str | None = None) -> Path:
    value = path or env("BASIC_AUTH_FILE")
    if not value:
        raise SystemExit("set HPCPERF_BASIC_AUTH_FILE (or pass --file) to the users file")
    return Path(value)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hpcperf user",
                                     description="manage basic-mode dashboard accounts")
    parser.add_argument("--file", help="users file (default: $HPCPERF_BASIC_AUTH_FILE)")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user or set a user's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    remove = sub.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    sub.add_parser("list", help="list the user names")
    args = parser.parse_args(argv)
    path = users_file(args.file)
    users = load(path) if path.exists() else {}
    if args.action == "list":
        print("\n".join(sorted(users)))
        return 0
    name = args.name.strip()
    if args.action == "remove":
        if users.pop(name, None) is None:
            print(f"no user {name!r}", file=sys.stderr)
            return 1
        save(path, users)
        return 0
    if not name or any(ch < " " or ch in ':"\\' for ch in name) or len(name) > 64:
        print(f"hpcperf user: bad user name {name!r}", file=sys.stderr)
        return 2
    existed = name in users
    try:
        users[name] = hash_password(_read_password(args.password_stdin))
    except ValueError as exc:
        print(f"hpcperf user: {exc}", file=sys.stderr)
        return 2
    save(path, users)
    print(f"{'updated' if existed else 'added'} {name} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
