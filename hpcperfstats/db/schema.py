"""The database schema: numbered migrations and the version recorded in the database.

``MIGRATIONS`` is the schema's history; ``schema_version`` records each one
applied. ``ensure_schema`` (``hpcperf db migrate``, the demo, the first
connection of a process) applies what is missing; ``schema_is_current``
lets a Dagster run skip it when the recorded version is the latest. A new
column is a new migration at the end, never an edit of an applied one.

Portable SQL first: every table and query works on plain PostgreSQL 15+.
Where the TimescaleDB extension is available, ``host_data`` becomes a
hypertable as well; nothing else changes, so both paths run the same queries.

The key of ``host_data`` includes the device from day one (see DESIGN.md:
adding it later meant decompressing terabytes upstream). Host-wide rows use
the empty device ``''``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from hpcperfstats.alerts.store import DDL as ALERTS_DDL
from hpcperfstats.config import env
from hpcperfstats.hostdata.aggregates import DDL as AGGREGATES_DDL

log = logging.getLogger(__name__)

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""

#: The first release's tables (recorded as version 1 by every release so far).
BASELINE = """
CREATE TABLE IF NOT EXISTS host_data (
    time   timestamptz NOT NULL,
    host   text NOT NULL,
    jobid  text,
    type   text NOT NULL,
    device text NOT NULL DEFAULT '',
    event  text NOT NULL,
    unit   text,
    value  double precision,
    delta  double precision,
    PRIMARY KEY (host, time, type, device, event)
);
CREATE INDEX IF NOT EXISTS host_data_time_brin ON host_data USING brin (time);

CREATE TABLE IF NOT EXISTS job_data (
    jobid          text PRIMARY KEY,
    jobid_raw      text,
    username       text,
    account        text,
    partition      text,
    qos            text,
    jobname        text,
    state          text,
    exit_code      text,
    submit_time    timestamptz,
    start_time     timestamptz,
    end_time       timestamptz,
    elapsed_s      bigint,
    timelimit_s    bigint,
    nnodes         integer,
    ncpus          integer,
    req_mem_bytes  bigint,
    ngpus          integer,
    nodelist       text,
    hosts          text[] NOT NULL DEFAULT '{}',
    source_day     date,
    loaded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_data_end_time ON job_data (end_time);
CREATE INDEX IF NOT EXISTS job_data_user ON job_data (username, end_time);
CREATE INDEX IF NOT EXISTS job_data_hosts ON job_data USING gin (hosts);

CREATE TABLE IF NOT EXISTS job_metrics (
    jobid       text NOT NULL,
    metric      text NOT NULL,
    value       double precision,
    unit        text,
    reason      text,
    day         date NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jobid, metric)
);
CREATE INDEX IF NOT EXISTS job_metrics_day ON job_metrics (day);
-- which data a metric came from: 'cgroup' (the job's own), 'node' (totals), 'accounting'
ALTER TABLE job_metrics ADD COLUMN IF NOT EXISTS source text;

-- Job-indexed derived series (hpcperfstats.jobs.series): narrow rows, not
-- host_data copies; ``day`` is the job's end day, the partition that owns them.
CREATE TABLE IF NOT EXISTS job_series (
    jobid  text NOT NULL,
    host   text NOT NULL,
    series text NOT NULL,
    time   timestamptz NOT NULL,
    value  double precision,
    day    date NOT NULL,
    PRIMARY KEY (jobid, series, host, time)
);
CREATE INDEX IF NOT EXISTS job_series_day ON job_series (day);

-- Samples expected and present per job and host; gaps as JSON [[from, to], ...].
CREATE TABLE IF NOT EXISTS job_coverage (
    jobid      text NOT NULL,
    host       text NOT NULL,
    interval_s double precision,
    expected   integer,
    present    integer,
    fraction   double precision,
    gaps       jsonb NOT NULL DEFAULT '[]',
    day        date NOT NULL,
    PRIMARY KEY (jobid, host)
);
CREATE INDEX IF NOT EXISTS job_coverage_day ON job_coverage (day);

-- Rule hits (hpcperfstats.flags.rules); rule_version is a hash of the rule that fired.
CREATE TABLE IF NOT EXISTS job_flags (
    jobid        text NOT NULL,
    flag         text NOT NULL,
    value        double precision,
    threshold    double precision,
    message      text NOT NULL,
    advice       text,
    rule_version text NOT NULL,
    day          date NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (jobid, flag)
);
CREATE INDEX IF NOT EXISTS job_flags_day ON job_flags (day);
CREATE INDEX IF NOT EXISTS job_flags_flag ON job_flags (flag, day);
"""


# One row per job and (application, executable): its share of the job's CPU
# time (basis 'cpu') or of its resident memory x time (basis 'memory').
#: a job's script as submitted (``hpcperfstats.jobs.scripts``): ``script`` NULL when it
#: was set aside (``problem`` says why: NUL bytes, not UTF-8); ``truncated``: only the
#: first ``HPCPERF_JOB_SCRIPT_MAX_BYTES`` of ``size_bytes`` are kept
JOB_SCRIPTS_DDL = """
CREATE TABLE IF NOT EXISTS job_scripts (
    cluster     text NOT NULL,
    jobid       text NOT NULL,
    script      text,
    size_bytes  bigint NOT NULL,
    truncated   boolean NOT NULL,
    problem     text,
    source_day  date NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, jobid)
);
"""

JOB_APPLICATIONS_DDL = """
CREATE TABLE IF NOT EXISTS job_applications (
    cluster      text NOT NULL,
    jobid        text NOT NULL,
    application  text NOT NULL,
    category     text NOT NULL,
    known        boolean NOT NULL,
    executable   text NOT NULL,
    processes    integer NOT NULL,
    cpu_s        double precision,
    mem_kb       double precision,
    share        double precision,
    basis        text NOT NULL,
    rule_version text NOT NULL,
    day          date NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, jobid, application, executable)
);
CREATE INDEX IF NOT EXISTS job_applications_day ON job_applications (day);
CREATE INDEX IF NOT EXISTS job_applications_app ON job_applications (application, day);
"""


@dataclass(frozen=True)
class Migration:
    """One step of the schema's history, applied once in version order.

    ``sql`` is either the step's SQL or a function doing it (a step that
    needs the settings or must look at the database first)."""

    version: int
    why: str
    sql: str | Callable[[psycopg.Connection], None]


#: every table's key after migration 5: the old key, then ``cluster``. Last, not
#: first: a lookup by job id or host (every reader today; a deployment has a
#: handful of clusters) keeps its index prefix on PostgreSQL 17, which has no
#: skip scan, and one that names the cluster too matches the whole key.
CLUSTER_KEYS: dict[str, tuple[str, ...]] = {
    "host_data": ("host", "time", "type", "device", "event", "cluster"),
    "job_data": ("jobid", "cluster"),
    "job_metrics": ("jobid", "metric", "cluster"),
    "job_series": ("jobid", "series", "host", "time", "cluster"),
    "job_coverage": ("jobid", "host", "cluster"),
    "job_flags": ("jobid", "flag", "cluster"),
    "host_agg": ("width_s", "host", "bucket", "type", "event", "device", "cluster"),
    "cluster_agg": ("width_s", "bucket", "type", "event", "device", "cluster"),
}


def add_cluster(conn: psycopg.Connection) -> None:
    """Migration 5: a ``cluster`` column in every table and its primary key.

    Existing rows get the configured cluster (``HPCPERF_CLUSTER``); the column
    then loses its default, so a writer that forgets the cluster fails
    instead of filing rows under the wrong one. A TimescaleDB ``host_data``
    with compression is decompressed first (TimescaleDB refuses key changes
    on compressed hypertables); ``ensure_schema`` then sets compression up
    again, segmented by cluster and host, and the policy recompresses the
    old chunks on its next run. Done before the first production load, that
    is a few days of data at most.
    """

    if _host_data_compressed(conn):
        conn.execute("SELECT remove_compression_policy('host_data', if_exists => TRUE)")
        conn.execute("SELECT decompress_chunk(c, if_compressed => TRUE) "
                     "FROM show_chunks('host_data') c")
        conn.execute("ALTER TABLE host_data SET (timescaledb.compress = false)")
    # the increase is value x interval: never read, and 1.3 of 5.7 compressed bytes
    # per value (benchmarks.storage); dropped while the chunks are open anyway
    conn.execute("ALTER TABLE host_data DROP COLUMN IF EXISTS delta")
    cluster = sql.Literal(env("CLUSTER"))
    for table, key in CLUSTER_KEYS.items():
        name = sql.Identifier(table)
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS cluster text NOT NULL "
                             "DEFAULT {}").format(name, cluster))
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN cluster DROP DEFAULT").format(name))
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}, ADD PRIMARY KEY ({})")
                     .format(name, sql.Identifier(f"{table}_pkey"),
                             sql.SQL(", ").join(map(sql.Identifier, key))))


def _host_data_compressed(conn: psycopg.Connection) -> bool:
    """``host_data`` is a TimescaleDB hypertable with compression enabled."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        return False
    row = conn.execute("SELECT compression_enabled FROM timescaledb_information.hypertables "
                       "WHERE hypertable_name = 'host_data'").fetchone()
    return bool(row and row[0])


#: ``job_series`` per job, host, series and bucket of fixed widths (ROLLUP_WIDTHS in
#: ``hpcperfstats.jobs.series``): a long job's whole series in one short index range.
#: Filter and order indexes for the job search over a million jobs: a metric range
#: (job_metrics by metric and value) and the sorts a portal pages through by cursor
#: (value, job id: the seek's row comparison), in the order the list uses for
#: "largest first" (DESC NULLS LAST: an index read backwards gives NULLS FIRST).
JOB_SERIES_ROLLUP_DDL = """
CREATE TABLE IF NOT EXISTS job_series_rollup (
    jobid     text NOT NULL,
    width_s   integer NOT NULL,
    series    text NOT NULL,
    host      text NOT NULL,
    bucket    timestamptz NOT NULL,
    last_time timestamptz NOT NULL,
    value     double precision,
    n         integer NOT NULL,
    day       date NOT NULL,
    cluster   text NOT NULL,
    PRIMARY KEY (jobid, width_s, series, host, bucket, cluster)
);
CREATE INDEX IF NOT EXISTS job_series_rollup_day ON job_series_rollup (day);
CREATE INDEX IF NOT EXISTS job_metrics_metric_value ON job_metrics (metric, value, jobid);
CREATE INDEX IF NOT EXISTS job_data_start_seek
    ON job_data (start_time DESC NULLS LAST, jobid DESC);
CREATE INDEX IF NOT EXISTS job_data_runtime_seek
    ON job_data (elapsed_s DESC NULLS LAST, jobid DESC);
CREATE INDEX IF NOT EXISTS job_data_nodes_seek
    ON job_data (nnodes DESC NULLS LAST, jobid DESC);
"""

#: Steps after 1 say ``IF NOT EXISTS``: databases of this week's builds recorded
#: version 1 but already had these columns (then added at every start).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the first release's tables", BASELINE),
    Migration(2, "how the job was asked for (sacct ReqCPUS, ReqTRES, SubmitLine): "
                 "advice in its form", """
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS req_cpus integer;
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS req_tres text;
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS submit_line text;
"""),
    Migration(3, "samples beyond the one per interval (prolog/epilog begin and end samples)",
              "ALTER TABLE job_coverage ADD COLUMN IF NOT EXISTS extra integer NOT NULL DEFAULT 0"),
    Migration(4, "aggregates for long ranges: host_agg and cluster_agg",
              AGGREGATES_DDL),
    Migration(5, "cluster in every table's key (several clusters per deployment); "
                 "existing rows belong to the configured HPCPERF_CLUSTER. host_data keeps "
                 "no float delta (value x interval, never read: a quarter of its bytes)",
              add_cluster),
    Migration(6, "alert history (once per job and rule), API tokens (hashed), and the "
                 "search's newest-first index", ALERTS_DDL),
    Migration(7, "applications each job ran (hpcperfstats.apps), per cluster",
              JOB_APPLICATIONS_DDL),
    Migration(8, "job_series rolled up per 10 min, 30 min and 2 h (a long job's whole "
                 "series fast), and the job search's metric-range and sort indexes",
              JOB_SERIES_ROLLUP_DDL),
    Migration(9, "the account page's index: an account's jobs in a range without "
                 "reading every job", "CREATE INDEX IF NOT EXISTS job_data_account "
                 "ON job_data (account, end_time)"),
    Migration(10, "job scripts where the site's Slurm stores them (sacct --batch-script): "
                  "one per job, owner and staff only", JOB_SCRIPTS_DDL),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def _extension_available(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)
    ).fetchone()
    return row is not None


def timescale_available(conn: psycopg.Connection) -> bool:
    """TimescaleDB can be used: installed, and loaded at server start.

    An installed but not preloaded extension makes ``CREATE EXTENSION`` fail
    ("must be preloaded"): that server gets the plain path, with one line
    saying why, instead of an aborted start.
    """
    if not _extension_available(conn, "timescaledb"):
        return False
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]
    if "timescaledb" not in [lib.strip() for lib in preload.split(",")]:
        log.warning("TimescaleDB is installed but not in shared_preload_libraries: "
                    "using plain PostgreSQL tables (add it and restart the server to use it)")
        return False
    return True


def ensure_name_index(conn: psycopg.Connection) -> bool:
    """A trigram index on job names, where ``pg_trgm`` can be had.

    The job search's "name contains" is ``ILIKE '%x%'``, which no B-tree
    helps: over a million jobs it scanned them all. ``pg_trgm`` ships with
    PostgreSQL's contrib and is a trusted extension (a database owner may
    create it); where it is missing or not allowed the search still works,
    only slower, so a refusal is not an error.
    """
    if not _extension_available(conn, "pg_trgm"):
        return False
    try:
        with conn.transaction():  # a savepoint: a refusal must not end the caller's work
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS job_data_jobname_trgm"
                " ON job_data USING gin (jobname gin_trgm_ops)"
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def recorded_version(conn: psycopg.Connection) -> int:
    """The latest migration recorded in the database (0: none, a fresh database)."""
    (table,) = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    if table is None:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def schema_is_current(conn: psycopg.Connection) -> bool:
    """Whether every migration is recorded: then a run need not take the schema lock."""
    current = recorded_version(conn) >= SCHEMA_VERSION
    conn.commit()  # end the read's transaction: the caller starts clean
    return current


def ensure_schema(conn: psycopg.Connection) -> dict:
    """Apply the migrations not yet recorded, then the optional extensions.

    Safe from every process at once: an advisory lock serialises callers
    (several Dagster runs may start together against a fresh database). The
    extension steps (trigram index, TimescaleDB) are idempotent and run on
    each call, so ``hpcperf db migrate`` after preloading TimescaleDB moves a
    plain installation to a hypertable.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(4242001)")
        conn.execute(VERSION_TABLE)
        start = recorded_version(conn)
        applied = [m.version for m in MIGRATIONS if m.version > start]
        for migration in MIGRATIONS:
            if migration.version > start:
                if callable(migration.sql):
                    migration.sql(conn)
                else:
                    conn.execute(migration.sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)",
                             (migration.version,))
        name_index = ensure_name_index(conn)
        timescale = timescale_available(conn)
        if timescale:
            from hpcperfstats.db.timescale import setup_host_data

            setup_host_data(conn)
    return {"timescale": timescale, "name_index": name_index, "version": SCHEMA_VERSION,
            "applied": applied}
