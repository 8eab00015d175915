"""The TimescaleDB path of ``host_data``: hypertable, compression, retention.

Runs where the extension is installed and preloaded (``scripts/setup`` builds
it into the embedded server; CI runs on it); the plain PostgreSQL path (BRIN
index on time, same queries) is complete on its own and keeps its own tests.

- Chunks of ``HPCPERF_CHUNK_INTERVAL`` (default 6 hours): at 10,000 nodes,
  5-minute samples and ~80 rows per sample that is ~55 M rows per chunk,
  a size whose indexes stay in memory while the hour partitions are rebuilt.
- Chunks older than ``HPCPERF_COMPRESS_AFTER`` (default 7 days; late samples
  older than that reopen a compressed chunk, which TimescaleDB allows but
  slowly) are compressed, segmented by host and ordered by type, device,
  event, time: one series after another, so consecutive values in a batch
  belong to the same counter and time steps are regular. Ordered by time
  first, neighbouring values came from different series and compressed
  1.3-2x worse (``python -m benchmarks.storage``: 15.0 against 19.8 bytes
  per value on fixture-shaped nodes, 7.6 against 16.0 on the demo).
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
