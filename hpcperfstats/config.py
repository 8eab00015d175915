"""Settings from ``HPCPERF_*`` environment variables, with one-machine defaults.

Read each time they are asked for (not cached at import), so a test or the
demo can point a process at another directory or database by setting the
environment before it calls in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hpcperf_monitor.rawformat import EPOCH_EARLIEST, EPOCH_MAX_AHEAD_S

#: default of HPCPERF_CHUNK_MAX_BYTES (and of HPCPERF_MESSAGE_MAX_BYTES): 16 MiB
CHUNK_DEFAULT = str(16 * 1024 * 1024)


def _epoch(text: str) -> float:
    """An epoch given as seconds or as an ISO date/time (UTC unless it says)."""
    try:
        return float(text)
    except ValueError:
        when = datetime.fromisoformat(text)
        return when.replace(tzinfo=when.tzinfo or UTC).timestamp()


def _env(name: str, default: str) -> str:
    value = os.environ.get(f"HPCPERF_{name}")
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    embedded_port: int
    amqp_url: str
    cluster: str
    drain_max_messages: int
    drain_max_seconds: float
    sensor_interval: int
    partition_start: datetime
    rate_lookback_s: float
    message_max_bytes: int
    retry_after_s: float
    #: bytes of raw text parsed at once (a message, an archive slice, a piece
    #: of an imported or damaged file): bounds memory per chunk
    chunk_max_bytes: int
    #: sane window of a live sample's epoch (``rawformat.epoch_in_window``):
    #: not before this epoch, not more than ``epoch_max_ahead_s`` past receipt
    epoch_earliest: float = EPOCH_EARLIEST
    epoch_max_ahead_s: float = EPOCH_MAX_AHEAD_S

    @property
    def archive_dir(self) -> Path:
        return Path(_env("ARCHIVE_DIR", str(self.home / "archive")))

    @property
    def quarantine_dir(self) -> Path:
        return Path(_env("QUARANTINE_DIR", str(self.home / "quarantine")))

    @property
    def accounting_dir(self) -> Path:
        return Path(_env("ACCOUNTING_DIR", str(self.home / "accounting")))

    @property
    def state_dir(self) -> Path:
        """Pending-work markers between pipeline stages."""
        return self.home / "state"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def export_target(self) -> str | None:
        """Off-site archive: a mounted path or ``[user@]host:/path`` (rsync over SSH)."""
        return _env("EXPORT_TARGET", "") or None

    @property
    def export_ssh(self) -> str:
        """Remote shell for rsync, e.g. ``ssh -i /etc/hpcperf/key -p 22``."""
        return _env("EXPORT_SSH", "ssh")

    @property
    def export_remove_after_days(self) -> float | None:
        """Remove a verified exported day locally once this many days old (unset: keep)."""
        value = _env("EXPORT_REMOVE_AFTER_DAYS", "")
        return float(value) if value else None

    @property
    def queue(self) -> str:
        """The RabbitMQ queue: one per cluster, named after it."""
        return self.cluster


def settings() -> Settings:
    """Current settings from the environment."""
    start = _utc(_env("PARTITION_START", "2026-01-01"))
    return Settings(
        home=Path(_env("HOME", str(Path.cwd() / "data"))).resolve(),
        database_url=os.environ.get("HPCPERF_DATABASE_URL") or None,
        embedded_port=int(_env("EMBEDDED_PORT", "54329")),
        amqp_url=_env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        cluster=_env("CLUSTER", "demo"),
        drain_max_messages=int(_env("DRAIN_MAX_MESSAGES", "50000")),
        drain_max_seconds=float(_env("DRAIN_MAX_SECONDS", "120")),
        sensor_interval=int(_env("SENSOR_INTERVAL", "30")),
        partition_start=start,
        rate_lookback_s=float(_env("RATE_LOOKBACK_S", "3600")),
        message_max_bytes=int(_env("MESSAGE_MAX_BYTES", _env("CHUNK_MAX_BYTES", CHUNK_DEFAULT))),
        retry_after_s=float(_env("RETRY_AFTER_S", "600")),
        chunk_max_bytes=int(_env("CHUNK_MAX_BYTES", CHUNK_DEFAULT)),
        epoch_earliest=_epoch(_env("EPOCH_EARLIEST", "2000-01-01")),
        epoch_max_ahead_s=float(_env("EPOCH_MAX_AHEAD_S", str(EPOCH_MAX_AHEAD_S))),
    )


def _utc(text: str) -> datetime:
    """An ISO date or time; UTC unless it names its own offset."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=when.tzinfo or UTC)
