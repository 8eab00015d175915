"""The database schema, created and migrated idempotently at start.

Portable SQL first: every table and query works on plain PostgreSQL 15+.
Where the TimescaleDB extension is available, ``host_data`` becomes a
hypertable as well; nothing else changes, so both paths run the same queries.

The key of ``host_data`` includes the device from day one (see DESIGN.md:
adding it later meant decompressing terabytes upstream). Host-wide rows use
the empty device ``''``.
"""

from __future__ import annotations

import logging

import psycopg

from hpcperfstats.aggregates import ensure_aggregates

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

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
-- how the job was asked for (sacct ReqCPUS, ReqTRES, SubmitLine): advice in its form
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS req_cpus integer;
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS req_tres text;
ALTER TABLE job_data ADD COLUMN IF NOT EXISTS submit_line text;
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

-- Job-indexed derived series (hpcperfstats.job_series): narrow rows, not
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
-- samples beyond the one per interval (prolog/epilog begin and end samples)
ALTER TABLE job_coverage ADD COLUMN IF NOT EXISTS extra integer NOT NULL DEFAULT 0;

-- Rule hits (hpcperfstats.flags); rule_version is a hash of the rule that fired.
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


def ensure_schema(conn: psycopg.Connection) -> dict:
    """Create or migrate the schema; safe to call from every process at start.

    An advisory lock serialises concurrent callers (several Dagster runs may
    start at once against a fresh database).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(4242001)")
        conn.execute(TABLES)
        name_index = ensure_name_index(conn)
        ensure_aggregates(conn)  # hpcperfstats.aggregates: host_agg, cluster_agg
        timescale = timescale_available(conn)
        if timescale:
            from hpcperfstats.db.timescale import setup_host_data

            setup_host_data(conn)
        conn.execute(
            "INSERT INTO schema_version (version) VALUES (%s) ON CONFLICT DO NOTHING",
            (SCHEMA_VERSION,),
        )
    return {"timescale": timescale, "name_index": name_index, "version": SCHEMA_VERSION}
