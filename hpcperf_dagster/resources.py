"""Resources: where the database, broker and files are (defaults from HPCPERF_*)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from dagster import ConfigurableResource

from hpcperfstats.config import settings
from hpcperfstats.db.connect import database_url
from hpcperfstats.db.schema import ensure_schema


class Database(ConfigurableResource):
    """PostgreSQL; empty ``url`` means HPCPERF_DATABASE_URL or the embedded server."""

    url: str = ""

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url or database_url())
        ensure_schema(conn)
        return conn


class Broker(ConfigurableResource):
    """RabbitMQ: one durable queue per cluster."""

    url: str = ""
    queue: str = ""

    @property
    def amqp_url(self) -> str:
        return self.url or settings().amqp_url

    @property
    def queue_name(self) -> str:
        return self.queue or settings().queue


class Paths(ConfigurableResource):
    """Archive, quarantine, accounting drop and pipeline state directories.

    Read from the environment on each use, so a run sees the settings of the
    process it runs in (the daemon, a test, the demo).
    """

    def _cfg(self):
        return settings()

    @property
    def archive(self) -> Path:
        return self._cfg().archive_dir

    @property
    def quarantine(self) -> Path:
        return self._cfg().quarantine_dir

    @property
    def accounting(self) -> Path:
        return self._cfg().accounting_dir

    @property
    def state(self) -> Path:
        return self._cfg().state_dir
