"""Where the database is: ``HPCPERF_DATABASE_URL``, else the embedded server."""

from __future__ import annotations

import psycopg

from hpcperfstats.config import Settings, settings
from hpcperfstats.db import embedded


def database_url(cfg: Settings | None = None) -> str:
    """The configured URL, starting the embedded server when none is set."""
    cfg = cfg or settings()
    if cfg.database_url:
        return cfg.database_url
    return embedded.start(cfg.pgdata_dir, cfg.embedded_port)


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A psycopg 3 connection to the hpcperfstats database."""
    return psycopg.connect(url or database_url(), **kwargs)
