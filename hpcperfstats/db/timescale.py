"""The TimescaleDB path of ``host_data``: hypertable, compression, retention.

Runs where the extension is installed and preloaded (``scripts/setup`` builds
it into the embedded server; CI runs on it); the plain PostgreSQL path (BRIN
index on time, same queries) is complete on its own and keeps its own tests.
Sizes and their measurements: docs/operations.md (``benchmarks.storage``).

- Chunks of ``HPCPERF_CHUNK_INTERVAL`` (default 6 hours): the newest chunk's
  indexes take every load and every late-sample rebuild, so they should stay
  in memory; at 106 index bytes per row and 1,256 rows per node-hour
  (fixture-shaped nodes) a 6-hour chunk of 10,000 nodes has 8 GB of them.
- Chunks older than ``HPCPERF_COMPRESS_AFTER`` (default 7 days) are
  compressed, segmented by cluster and host and ordered by type, device,
  event, time: one series after another, so consecutive values in a batch
  belong to the same counter and time steps are regular (ordered by time
  first, neighbouring values come from different series: 1.7x larger).
  Compressing merges chunks up to ``HPCPERF_COMPRESSED_CHUNK_INTERVAL`` (a
  day: 288 samples per series instead of 72, fewer series starts per batch).
  ``compress_index`` keeps only the orderby columns' min/max: TimescaleDB's
  automatic composite bloom filter over the key cost a byte per value and
  no query filters on it.
- ``HPCPERF_RETENTION`` (unset: keep everything) drops older chunks.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from hpcperfstats.config import env


def setup_host_data(conn: psycopg.Connection) -> None:
    """Make host_data a compressed hypertable with the configured policies."""
    chunk = env("CHUNK_INTERVAL")
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    conn.execute(
        "SELECT create_hypertable('host_data', 'time', chunk_time_interval => %s::interval, "
        "if_not_exists => TRUE, migrate_data => TRUE)", (chunk,))
    # ALTER TABLE ... SET takes no parameters: the interval goes in as a quoted literal
    conn.execute(sql.SQL(
        "ALTER TABLE host_data SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'cluster, host', "
        "timescaledb.compress_orderby = 'type, device, event, time', "
        # only the orderby columns' min/max: no automatic composite bloom filter
        "timescaledb.compress_index = 'minmax(time)', "
        "timescaledb.compress_chunk_time_interval = {})"
    ).format(sql.Literal(env("COMPRESSED_CHUNK_INTERVAL"))))
    conn.execute("SELECT add_compression_policy('host_data', %s::interval, if_not_exists => TRUE)",
                 (env("COMPRESS_AFTER"),))
    retention = env("RETENTION")
    if retention:
        conn.execute("SELECT add_retention_policy('host_data', %s::interval, "
                     "if_not_exists => TRUE)", (retention,))
