"""Resources: where the database, broker and files are, as Dagster config fields.

Each field is a registry setting (``hpcperfstats.config``). ``resources()``
gives a field the setting's ``EnvVar`` when the variable is set, so the
Dagster UI shows where a value comes from and a run resolves it then; an
empty field means the registry's default, read when it is used. Tests hand a
resource a temporary directory directly (``Paths(home=str(tmp_path))``).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from hpcperfstats.clusters import cluster_config, clusters_file
from hpcperfstats.config import SETTINGS, env, is_set, settings
from hpcperfstats.db.connect import database_url
from hpcperfstats.db.schema import ensure_schema, schema_is_current


def _field(name: str):
    """A pydantic field described by the registry: empty means the setting's default."""
    return Field(default="", description=f"HPCPERF_{name}: {SETTINGS[name].meaning} "
                                         "(empty: the setting's default)")


class Database(ConfigurableResource):
    """PostgreSQL; empty ``url`` means HPCPERF_DATABASE_URL or the embedded server."""

    url: str = _field("DATABASE_URL")

    def connect(self) -> psycopg.Connection:
        """A connection; migrates first only when the recorded schema version is behind."""
        conn = psycopg.connect(self.url or database_url())
        if not schema_is_current(conn):
            ensure_schema(conn)
        return conn


class Broker(ConfigurableResource):
    """RabbitMQ: one durable queue per cluster."""

    url: str = _field("AMQP_URL")
    queue: str = _field("CLUSTER")

    @property
    def amqp_url(self) -> str:
        return self.url or settings().amqp_url

    @property
    def queue_name(self) -> str:
        return self.queue or settings().queue


class Paths(ConfigurableResource):
    """Archive, quarantine and accounting drop directories."""

    home: str = _field("HOME")
    archive_dir: str = _field("ARCHIVE_DIR")
    quarantine_dir: str = _field("QUARANTINE_DIR")
    accounting_dir: str = _field("ACCOUNTING_DIR")

    def _under_home(self, given: str, name: str, folder: str) -> Path:
        if given:
            return Path(given)
        if not self.home:  # nothing configured here: the cluster's settings decide
            return getattr(settings(), f"{folder}_dir")
        return Path(env(name) or Path(self.home).resolve() / folder)

    @property
    def archive(self) -> Path:
        return self._under_home(self.archive_dir, "ARCHIVE_DIR", "archive")

    @property
    def quarantine(self) -> Path:
        return self._under_home(self.quarantine_dir, "QUARANTINE_DIR", "quarantine")

    @property
    def accounting(self) -> Path:
        return self._under_home(self.accounting_dir, "ACCOUNTING_DIR", "accounting")


def _configured(name: str) -> str:
    """The setting's ``EnvVar`` when the variable is set, else empty (its default)."""
    return EnvVar(f"HPCPERF_{name}") if is_set(name) else ""


def resources() -> dict[str, ConfigurableResource]:
    """The code location's resources, configured from the environment it loads in.

    With a clusters file the location serves one of several clusters: its queue
    and folders are that cluster's entry (``cluster_config``), not the
    variables every process of a deployment shares (``HPCPERF_ARCHIVE_DIR`` names
    the first cluster's archive only)."""
    if clusters_file() is not None:
        cluster = cluster_config()
        return {
            "db": Database(url=_configured("DATABASE_URL")),
            "broker": Broker(url=_configured("AMQP_URL"), queue=cluster.queue),
            "paths": Paths(home=_configured("HOME"), archive_dir=str(cluster.archive_dir),
                           quarantine_dir=str(cluster.quarantine_dir),
                           accounting_dir=str(cluster.accounting_dir)),
        }
    return {
        "db": Database(url=_configured("DATABASE_URL")),
        "broker": Broker(url=_configured("AMQP_URL"), queue=_configured("CLUSTER")),
        "paths": Paths(**{field: _configured(name) for field, name in (
            ("home", "HOME"), ("archive_dir", "ARCHIVE_DIR"),
            ("quarantine_dir", "QUARANTINE_DIR"), ("accounting_dir", "ACCOUNTING_DIR"))}),
    }
