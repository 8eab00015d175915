"""Each table's current shape, declared once: its columns' SQL and polars types.

The COPY column lists (``copy_columns``) and the polars schemas of the frames
written into a table (``schema``) are derived from here; the DDL that makes
the shape is the migration history (``hpcperfstats.db.schema.MIGRATIONS``),
and ``tests/pipeline/test_migrations.py`` checks that a migrated database has
exactly these columns and types. Pure: no connection is needed to read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Column:
    """One column: ``sql`` as PostgreSQL's ``format_type`` names it; ``dtype`` the
    polars type of a frame that carries it (None: not in the frames, e.g. ``day``,
    added when a job day is copied); ``copied`` False for server-filled columns."""

    name: str
    sql: str
    dtype: pl.DataType | None = None
    copied: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    @property
    def copy_columns(self) -> list[str]:
        """The columns a COPY writes, in frame order."""
        return [c.name for c in self.columns if c.copied]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """The polars schema of the frames computed for this table."""
        return {c.name: c.dtype for c in self.columns if c.dtype is not None}

    @property
    def sql_types(self) -> dict[str, str]:
        return {c.name: c.sql for c in self.columns}


_C = Column
TEXT, FLOAT, INT, BIGINT = "text", "double precision", "integer", "bigint"
TIME, DATE = "timestamp with time zone", "date"
_DAY = _C("day", DATE)  # the job's end day: the partition that owns the row
#: in every key (migration 5); not in the computed frames: the writer adds it
CLUSTER = _C("cluster", TEXT)
_COMPUTED = _C("computed_at", TIME, copied=False)

HOST_DATA = Table("host_data", (
    _C("time", TIME, UTC_TIME), _C("host", TEXT, pl.Utf8), _C("jobid", TEXT, pl.Utf8),
    _C("type", TEXT, pl.Utf8), _C("device", TEXT, pl.Utf8), _C("event", TEXT, pl.Utf8),
    # no ``delta`` since migration 5: value x interval, never read, a quarter of the bytes
    _C("unit", TEXT, pl.Utf8), _C("value", FLOAT, pl.Float64), CLUSTER,
))
#: polars types of job_data come from the sacct parser (``hpcperfstats.jobs.accounting``)
JOB_DATA = Table("job_data", (
    *(_C(name, sql) for name, sql in (
        ("jobid", TEXT), ("jobid_raw", TEXT), ("username", TEXT), ("account", TEXT),
        ("partition", TEXT), ("qos", TEXT), ("jobname", TEXT), ("state", TEXT),
        ("exit_code", TEXT), ("submit_time", TIME), ("start_time", TIME), ("end_time", TIME),
        ("elapsed_s", BIGINT), ("timelimit_s", BIGINT), ("nnodes", INT), ("ncpus", INT),
        ("req_mem_bytes", BIGINT), ("ngpus", INT), ("nodelist", TEXT), ("hosts", "text[]"),
        ("source_day", DATE), ("req_cpus", INT), ("req_tres", TEXT), ("submit_line", TEXT))),
    _C("loaded_at", TIME, copied=False), CLUSTER,
))
JOB_METRICS = Table("job_metrics", (
    _C("jobid", TEXT, pl.Utf8), _C("metric", TEXT, pl.Utf8), _C("value", FLOAT, pl.Float64),
    _C("unit", TEXT, pl.Utf8), _C("reason", TEXT, pl.Utf8),
    # which data a metric came from: 'cgroup' (the job's own), 'node' (totals), 'accounting'
    _C("source", TEXT, pl.Utf8), _DAY, _COMPUTED, CLUSTER,
))
JOB_SERIES = Table("job_series", (
    _C("jobid", TEXT, pl.Utf8), _C("host", TEXT, pl.Utf8), _C("series", TEXT, pl.Utf8),
    _C("time", TIME, UTC_TIME), _C("value", FLOAT, pl.Float64), _DAY, CLUSTER,
))
#: ``job_series`` averaged per job, host, series and bucket of a few fixed widths
#: (``hpcperfstats.jobs.series.job_series_rollup``): what a long job's plot reads.
#: ``value`` is the mean of ``n`` values; ``last_time`` the bucket's last sample.
JOB_SERIES_ROLLUP = Table("job_series_rollup", (
    _C("jobid", TEXT, pl.Utf8), _C("width_s", INT, pl.Int32), _C("series", TEXT, pl.Utf8),
    _C("host", TEXT, pl.Utf8), _C("bucket", TIME, UTC_TIME), _C("last_time", TIME, UTC_TIME),
    _C("value", FLOAT, pl.Float64), _C("n", INT, pl.Int32), _DAY, CLUSTER,
))
JOB_COVERAGE = Table("job_coverage", (
    _C("jobid", TEXT, pl.Utf8), _C("host", TEXT, pl.Utf8), _C("interval_s", FLOAT, pl.Float64),
    _C("expected", INT, pl.Int64), _C("present", INT, pl.Int64),
    _C("fraction", FLOAT, pl.Float64),
    _C("gaps", "jsonb", pl.Utf8),  # JSON list of [from, to] ISO-8601 UTC pairs
    _C("extra", INT, pl.Int64),  # samples beyond one per expected instant (begin/end samples)
    _DAY, CLUSTER,
))
JOB_FLAGS = Table("job_flags", (
    _C("jobid", TEXT, pl.Utf8), _C("flag", TEXT, pl.Utf8), _C("value", FLOAT, pl.Float64),
    _C("threshold", FLOAT, pl.Float64), _C("message", TEXT, pl.Utf8),
    _C("advice", TEXT, pl.Utf8), _C("rule_version", TEXT, pl.Utf8), _DAY, _COMPUTED, CLUSTER,
))

#: one row per (cluster, job, alert rule): the job is reported once per rule
ALERT_HISTORY = Table("alert_history", (
    _C("cluster", TEXT, pl.Utf8), _C("jobid", TEXT, pl.Utf8), _C("rule", TEXT, pl.Utf8),
    _C("username", TEXT, pl.Utf8), _C("severity", TEXT, pl.Utf8),
    _C("value", FLOAT, pl.Float64), _C("waste", FLOAT, pl.Float64),
    _C("waste_kind", TEXT, pl.Utf8), _C("message", TEXT, pl.Utf8), _C("advice", TEXT, pl.Utf8),
    _C("rule_version", TEXT, pl.Utf8), _DAY,
    # pending (to send, or held over the cap), sent, opted_out (never sent)
    _C("status", TEXT, pl.Utf8), _C("digest_day", DATE), _C("sent_at", TIME),
    _C("attempts", INT), _C("last_error", TEXT), _C("created_at", TIME, copied=False),
))
#: API tokens: only a hash is stored; the token is shown once, when it is made
API_TOKENS = Table("api_tokens", (
    _C("cluster", TEXT), _C("token_id", TEXT), _C("username", TEXT),
    _C("token_hash", TEXT), _C("note", TEXT), _C("created_at", TIME, copied=False),
    _C("revoked_at", TIME), _C("last_used_at", TIME),
))

JOB_APPLICATIONS = Table("job_applications", (
    _C("cluster", TEXT, pl.Utf8), _C("jobid", TEXT, pl.Utf8), _C("application", TEXT, pl.Utf8),
    _C("category", TEXT, pl.Utf8), _C("known", "boolean", pl.Boolean),
    # the executable's path (procexe), else the process name (proc)
    _C("executable", TEXT, pl.Utf8), _C("processes", INT, pl.Int64),
    _C("cpu_s", FLOAT, pl.Float64), _C("mem_kb", FLOAT, pl.Float64),
    _C("share", FLOAT, pl.Float64), _C("basis", TEXT, pl.Utf8),  # 'cpu' or 'memory'
    _C("rule_version", TEXT, pl.Utf8), _DAY, _COMPUTED,
))

#: a job's script (``hpcperfstats.jobs.scripts``): the job owner's and staff's to read
JOB_SCRIPTS = Table("job_scripts", (
    _C("cluster", TEXT, pl.Utf8), _C("jobid", TEXT, pl.Utf8), _C("script", TEXT, pl.Utf8),
    _C("size_bytes", BIGINT, pl.Int64), _C("truncated", "boolean", pl.Boolean),
    _C("problem", TEXT, pl.Utf8), _C("source_day", DATE, pl.Date),
    _C("loaded_at", TIME, copied=False),
))

TABLES: dict[str, Table] = {t.name: t for t in (
    HOST_DATA, JOB_DATA, JOB_METRICS, JOB_SERIES, JOB_SERIES_ROLLUP, JOB_COVERAGE, JOB_FLAGS,
    ALERT_HISTORY,
    API_TOKENS, JOB_APPLICATIONS, JOB_SCRIPTS)}
