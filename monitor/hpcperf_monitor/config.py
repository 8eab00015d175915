"""Monitor settings: command line, then ``HPCPERF_*`` variables, then the file.

The file (``/etc/hpcperfstats/monitor.conf``, or ``--config`` /
``HPCPERF_MONITOR_CONFIG``) holds ``key = value`` lines; ``#`` starts a
comment and ``[section]`` lines are ignored, so an INI file works too.
The daemon rereads it on SIGHUP; settings given on the command line or in
the environment keep winning over it, as at start. A missing file is
fine (defaults); a bad value is one error line and the old setting stays.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/hpcperfstats/monitor.conf")

#: file key -> environment variable
ENV = {
    "amqp_url": "HPCPERF_AMQP_URL",
    "cluster": "HPCPERF_CLUSTER",
    "interval": "HPCPERF_MONITOR_INTERVAL",
    "state_dir": "HPCPERF_MONITOR_STATE",
    "spool_mb": "HPCPERF_MONITOR_SPOOL_MB",
    "collectors": "HPCPERF_MONITOR_COLLECTORS",
    "header_hours": "HPCPERF_MONITOR_HEADER_HOURS",
}


def default_state_dir() -> Path:
    """``/var/lib/hpcperfstats`` when we may write there (root), else per user."""
    system = Path("/var/lib/hpcperfstats")
    if os.access(system if system.exists() else system.parent, os.W_OK):
        return system
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hpcperfstats"


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    cluster: str = "demo"
    interval: float = 300.0
    state_dir: Path = field(default_factory=default_state_dir)
    spool_mb: float = 100.0
    collectors: tuple[str, ...] = ()  # empty: every known type
    header_hours: float = 24.0


def _convert(key: str, value: str, known: tuple[str, ...]) -> object:
    if key in ("interval", "spool_mb", "header_hours"):
        number = float(value)
        if number <= 0:
            raise ValueError(f"{key} must be positive")
        return number
    if key == "state_dir":
        return Path(value)
    if key == "collectors":
        names = tuple(c for c in value.replace(" ", ",").split(",") if c)
        unknown = [c for c in names if c not in known]
        if unknown:
            raise ValueError(f"unknown collector(s) {', '.join(unknown)}")
        return names
    return value


def read_file(path: Path) -> dict[str, str]:
    """``key = value`` pairs of the config file ({} when it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    out = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("["):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in ENV:
            log.error("%s:%d: not a setting: %s", path, number, line)
            continue
        out[key] = value.strip()
    return out


def resolve(
    overrides: dict[str, str], path: Path, known: tuple[str, ...], base: Settings | None = None
) -> Settings:
    """Settings from the file under ``path``, then env, then ``overrides`` (argv).

    ``base`` (the running settings) keeps a value whose new text is bad.
    """
    layers: list[tuple[str, dict[str, str]]] = [(str(path), read_file(path))]
    layers.append(("environment", {k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)}))
    layers.append(("command line", overrides))
    values: dict[str, object] = {}
    for where, layer in layers:
        for key, text in layer.items():
            try:
                values[key] = _convert(key, text, known)
            except ValueError as exc:
                if where == "command line":
                    raise
                log.error("%s: %s = %r ignored: %s", where, key, text, exc)
                if base is not None:
                    values[key] = getattr(base, key)
    return replace(Settings(), **values)
