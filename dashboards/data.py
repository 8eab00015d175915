"""Every job-level database read the dashboards make, as plain functions.

Each function takes an open connection (and, where jobs are listed or
opened, the ``Viewer``) and returns polars frames or plain values, so pages
stay free of SQL and the queries can be tested on their own. User input
only ever travels as query parameters; the SQL chosen at run time (sort
order, metric names) comes from fixed allow-lists here.

Who may see which job is decided in ``scope_clause`` and nowhere else:
every query that returns a job goes through it. It also keeps a query to the
viewer's cluster (``Viewer.cluster``, the selector): job ids and host names
repeat between clusters, so every join to another job table is on
``(cluster, jobid)`` and every per-job read takes the job's cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from dashboards.auth import Viewer
from hpcperfstats.config import cluster_name
from hpcperfstats.db.connect import connect, database_url
from hpcperfstats.jobs.metrics import METRICS

STAFF = Viewer("staff", staff=True)

# Job list columns: the page's column key -> the SQL that sorts by it.
SORT_KEYS: dict[str, str] = {
    "jobid": "length(j.jobid) {dir}, j.jobid {dir}",
    "user": "j.username {dir}",
    "account": "j.account {dir}",
    "partition": "j.partition {dir}",
    "name": "j.jobname {dir}",
    "state": "j.state {dir}",
    "start": "j.start_time {dir}",
    "end": "j.end_time {dir}",
    "nodes": "j.nnodes {dir}",
    "runtime": "j.elapsed_s {dir}",
    "cpu_eff": "j.eff_sort {dir}",
}

# Sorting by a metric joins it once (a hash join) instead of looking it up per row.
_WITH_EFFICIENCY = sql.SQL(
    "(SELECT j.*, se.value AS eff_sort FROM job_data j LEFT JOIN job_metrics se"
    " ON se.cluster = j.cluster AND se.jobid = j.jobid AND se.metric = 'cpu_efficiency')"
)

#: Matches are counted up to this many; past it the page says "more than".
COUNT_LIMIT = 100_000

JOB_LIST_SCHEMA = {
    "jobid": pl.Utf8,
    "user": pl.Utf8,
    "account": pl.Utf8,
    "partition": pl.Utf8,
    "name": pl.Utf8,
    "state": pl.Utf8,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "nodes": pl.Int64,
    "runtime": pl.Int64,
    "cpu_eff": pl.Float64,
    "mem_hwm": pl.Float64,
    "flags": pl.Utf8,
    "mem_req": pl.Float64,
}

_URL: str | None = None
WORK_MEM = "64MB"
#: The planner's price of a random page read for the user totals alone: at the default
#: 4 (spinning disks) a month's 86,000 jobs hash all 2 M job_metrics rows (1.4-1.7 s
#: under load) where a probe per job takes 0.6 s. Not for every query: the wide job's
#: host_data read then walks each chunk's key index instead of scanning it in
#: parallel, twice as slow.
TOTALS_RANDOM_PAGE_COST = 1.1


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A short-lived connection; the URL is resolved once per process.

    Resolving may start the embedded server, which we do not want to repeat
    (or lock on) for every page view.
    """
    global _URL
    if _URL is None:
        _URL = database_url()
    # work_mem: bucketing a wide job's series groups a few hundred thousand
    # rows; with the 4 MB default PostgreSQL sorts them on disk (2-3x slower).
    with connect(_URL, options=f"-c TimeZone=UTC -c work_mem={WORK_MEM}") as conn:
        yield conn


#: The longest text any parameter may have (job names are the longest, 200 in Slurm).
MAX_TEXT = 256


def valid_text(value: str | None) -> bool:
    """Whether a parameter may reach SQL: no NUL or other control characters, no
    undecodable bytes (U+FFFD), not absurdly long. PostgreSQL refuses NUL in text
    outright (a ``DataError``); the others can match nothing we store."""
    if value is None:
        return True
    return len(value) <= MAX_TEXT and not any(
        ch < " " or ch == "\x7f" or ch == "\ufffd" for ch in value)


#: An aggregate over other people's jobs (a cluster total, a peer percentile) is
#: shown to a researcher only when it covers at least this many jobs of at least
#: this many users: fewer would let them read off one colleague's usage.
MIN_POOL_JOBS = 20
MIN_POOL_USERS = 5


def viewer_cluster(viewer: Viewer) -> str:
    """The cluster ``viewer`` looks at (the deployment's default when none chosen)."""
    return viewer.cluster or cluster_name()


def cluster_clause(viewer: Viewer, alias: str = "j") -> tuple[sql.Composable, dict[str, Any]]:
    """``alias`` rows of the viewer's cluster: part of ``scope_clause``; a pooled
    aggregate (whose ``scope_clause`` is a HAVING) puts it in its WHERE."""
    return (sql.SQL("{a}.cluster = %(scope_cluster)s").format(a=sql.Identifier(alias)),
            {"scope_cluster": viewer_cluster(viewer)})


def scope_clause(
    viewer: Viewer, alias: str = "j", *, pooled: bool = False
) -> tuple[sql.Composable, dict[str, Any]]:
    """What ``viewer`` may see of ``job_data`` (as ``alias``): the one access rule.

    ``pooled=False``: a WHERE condition, the rows the viewer may see.
    ``pooled=True``: a HAVING condition for an aggregate over a pool of
    everyone's jobs (cluster totals, peer percentiles): staff always pass;
    a researcher only when the group holds ``MIN_POOL_JOBS`` jobs of
    ``MIN_POOL_USERS`` users; nobody never. Host names and cluster-wide
    series are staff-only and never pooled for researchers.

    The WHERE form also keeps the rows to the viewer's cluster
    (``cluster_clause``): a username is one person on every cluster, and a
    researcher sees a cluster's jobs only where they ran there.
    """
    if pooled:
        if viewer.staff:
            return sql.SQL("TRUE"), {}
        if viewer.user is None:
            return sql.SQL("FALSE"), {}
        return sql.SQL(
            "(count(*) >= %(pool_jobs)s AND count(DISTINCT {a}.username) >= %(pool_users)s)"
        ).format(a=sql.Identifier(alias)), {"pool_jobs": MIN_POOL_JOBS,
                                           "pool_users": MIN_POOL_USERS}
    on_cluster, params = cluster_clause(viewer, alias)
    if viewer.staff:
        return on_cluster, params
    if viewer.user is None:
        return sql.SQL("FALSE"), params
    a = sql.Identifier(alias)
    if viewer.share_accounts:  # the accounts they ran under on this cluster
        clause = sql.SQL(
            "({a}.username = %(scope_user)s OR {a}.account IN "
            "(SELECT DISTINCT account FROM job_data WHERE cluster = %(scope_cluster)s"
            " AND username = %(scope_user)s))"
        ).format(a=a)
    else:
        clause = sql.SQL("{a}.username = %(scope_user)s").format(a=a)
    return sql.SQL("{c} AND {u}").format(c=on_cluster, u=clause), params | {
        "scope_user": viewer.user}


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` literally at the start of a value."""
    return _like_escape(text) + "%"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class JobFilter:
    """What the search page asks for; empty fields do not filter."""

    user: str | None = None
    account: str | None = None
    partition: str | None = None
    state: str | None = None
    name: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_nodes: int | None = None
    max_nodes: int | None = None
    min_runtime_s: float | None = None
    max_runtime_s: float | None = None
    metric: str | None = None
    metric_min: float | None = None
    metric_max: float | None = None
    flag: str | None = None
    #: an application name from job_applications (exact, as the rules name it)
    application: str | None = None
    #: user and account match exactly instead of as a prefix (user/account page)
    exact: bool = False

    def query_args(self) -> dict[str, str]:
        """The non-empty fields as URL arguments (for shareable search links)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, "", False):
                out[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


def job_filter_clause(
    conn: psycopg.Connection, filt: JobFilter, viewer: Viewer
) -> tuple[sql.Composable, dict[str, Any]]:
    scope, params = scope_clause(viewer)
    clauses: list[sql.Composable] = [scope]
    texts = (filt.user, filt.account, filt.partition, filt.state, filt.name, filt.flag,
             filt.metric, filt.application)
    if not all(valid_text(t) for t in texts):
        return sql.SQL("FALSE"), params  # a value nothing stored can equal: no match

    def add(text: str, name: str, value: Any) -> None:
        clauses.append(sql.SQL(text))
        params[name] = value

    if filt.user:
        if filt.exact:
            add("j.username = %(user)s", "user", filt.user)
        else:
            add("j.username LIKE %(user)s", "user", _like_prefix(filt.user))
    if filt.account:
        if filt.exact:
            add("j.account = %(account)s", "account", filt.account)
        else:
            add("j.account LIKE %(account)s", "account", _like_prefix(filt.account))
    if filt.partition:
        add("j.partition = %(partition)s", "partition", filt.partition)
    if filt.state:
        add("j.state = %(state)s", "state", filt.state)
    if filt.name:
        add("j.jobname ILIKE %(name)s", "name", "%" + _like_escape(filt.name) + "%")
    if filt.since:
        # still running (no end) counts as after; spelt as an OR so the end_time
        # indexes serve it (coalesce() hides the column from them)
        add("(j.end_time >= %(since)s OR j.end_time IS NULL)", "since", filt.since)
    if filt.until:
        add("j.start_time < %(until)s", "until", filt.until)
    if filt.min_nodes is not None:
        add("j.nnodes >= %(min_nodes)s", "min_nodes", int(filt.min_nodes))
    if filt.max_nodes is not None:
        add("j.nnodes <= %(max_nodes)s", "max_nodes", int(filt.max_nodes))
    if filt.min_runtime_s is not None:
        add("j.elapsed_s >= %(min_rt)s", "min_rt", float(filt.min_runtime_s))
    if filt.max_runtime_s is not None:
        add("j.elapsed_s <= %(max_rt)s", "max_rt", float(filt.max_runtime_s))
    if filt.metric in METRICS and (filt.metric_min is not None or filt.metric_max is not None):
        add("EXISTS (SELECT 1 FROM job_metrics fm WHERE fm.cluster = j.cluster"
            " AND fm.jobid = j.jobid"
            " AND fm.metric = %(metric)s"
            " AND fm.value >= coalesce(%(mmin)s::float8, '-infinity')"
            " AND fm.value <= coalesce(%(mmax)s::float8, 'infinity'))", "metric", filt.metric)
        params["mmin"] = None if filt.metric_min is None else float(filt.metric_min)
        params["mmax"] = None if filt.metric_max is None else float(filt.metric_max)
    if filt.flag:
        add("EXISTS (SELECT 1 FROM job_flags ff WHERE ff.cluster = j.cluster"
            " AND ff.jobid = j.jobid"
            " AND ff.flag = %(flag)s)", "flag", filt.flag)
    if filt.application:
        add("EXISTS (SELECT 1 FROM job_applications fa WHERE fa.cluster = j.cluster"
            " AND fa.jobid = j.jobid AND fa.application = %(application)s)",
            "application", filt.application)
    return sql.SQL(" AND ").join(clauses), params


#: One page of the job list: the page's rows from {base} (job_data, or it with the
#: efficiency to sort by), then their metrics and flags looked up for those rows only.
_PAGE = """
    SELECT j.jobid, j.username, j.account, j.partition, j.jobname, j.state,
           j.start_time, j.end_time, j.nnodes, j.elapsed_s,
           (SELECT value FROM job_metrics m WHERE m.cluster = j.cluster
            AND m.jobid = j.jobid AND m.metric = 'cpu_efficiency'),
           (SELECT value FROM job_metrics m WHERE m.cluster = j.cluster
            AND m.jobid = j.jobid AND m.metric = 'mem_hwm_bytes'),
           (SELECT string_agg(DISTINCT f.flag, ', ') FROM job_flags f
            WHERE f.cluster = j.cluster AND f.jobid = j.jobid),
           j.req_mem_bytes::float8 / greatest(j.nnodes, 1)
    FROM (SELECT * FROM {base} j WHERE {where}
          ORDER BY {order} {nulls}, j.jobid {direction}
          LIMIT %(limit)s OFFSET %(offset)s) j
    ORDER BY {order} {nulls}, j.jobid {direction}
"""


def list_jobs(
    conn: psycopg.Connection,
    filt: JobFilter | None = None,
    viewer: Viewer = STAFF,
    *,
    sort: str = "end",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
    count: bool = True,
    after: tuple[Any, str] | None = None,
) -> tuple[pl.DataFrame, int]:
    """One page of jobs (newest end first by default) and the match count
    (capped at ``COUNT_LIMIT + 1``: counting every one of a million matches
    costs a full scan per page view).

    Paged in SQL: a server that holds every job in memory per session does
    not survive a centre with millions of jobs. Metrics and flags are looked
    up for the page's rows only. ``after``: the page after the row with this
    sort value and job id (:func:`page_key` of the previous page's last row;
    seek paging: page 200 costs what page 1 costs, where ``offset`` reads and
    drops every row before it). Ties are ordered by job id in the sort's
    direction, so (value, job id) is a row comparison an index can seek to.
    """
    where, params = job_filter_clause(conn, filt or JobFilter(), viewer)
    sort = sort if sort in SORT_KEYS else "end"
    direction = "DESC" if descending else "ASC"
    order = SORT_KEYS[sort].format(dir=direction)
    # newest end first puts running jobs (no end yet) on top: DESC NULLS FIRST is the
    # end_time index read backwards, so the default order stays an index scan
    nulls_first = sort == "end" and descending
    nulls = sql.SQL("NULLS FIRST" if nulls_first else "NULLS LAST")
    counted = where
    limit, offset = max(1, int(limit)), max(0, int(offset))

    def page(base: sql.Composable, where: sql.Composable, limit: int, offset: int,
             extra: dict[str, Any], nulls: sql.Composable = nulls) -> list[tuple]:
        query = sql.SQL(_PAGE).format(where=where, order=sql.SQL(order), base=base,
                                      nulls=nulls, direction=sql.SQL(direction))
        return conn.execute(query, params | extra | {"limit": limit, "offset": offset}
                            ).fetchall()

    if sort == "cpu_eff" and offset == 0 and (after is None or after[0] is not None):
        # jobs with an efficiency first, read in order from job_metrics' (metric, value,
        # jobid) index and stopped at the page; the jobs without one (they sort last)
        # only when the page reaches them
        cmp = "<" if descending else ">"
        seek = sql.SQL(f" AND (se.value, se.jobid) {cmp} (%(after_v)s, %(after_id)s)"
                       if after else "")
        # no ORDER BY inside (the page orders): a sorted subquery is planned on its own,
        # for all its rows (over a million jobs a hash join and a sort, 2.7 s), where
        # a flat one lets the page's LIMIT choose the index walk (12 ms)
        inner = sql.SQL(
            "(SELECT j.*, se.value AS eff_sort FROM job_metrics se JOIN job_data j"
            " ON j.cluster = se.cluster AND j.jobid = se.jobid WHERE se.metric = 'cpu_efficiency'"
            " AND se.value IS NOT NULL{seek})").format(seek=seek)
        extra = {"after_v": after[0], "after_id": after[1]} if after else {}
        # no NULLs here: the direction's own NULLS order is the index's, read either way
        rows = page(inner, where, limit, 0, extra,
                    sql.SQL("NULLS FIRST" if descending else "NULLS LAST"))
        if len(rows) < limit:
            rows += page(_WITH_EFFICIENCY, sql.SQL("{} AND j.eff_sort IS NULL").format(where),
                         limit - len(rows), 0, {})
    elif (sort == "end" and descending and "until" in params and after is None
          and offset == 0):
        # newest end first among jobs that ran before "until": those still running at
        # "until" (no end, or an end after it) come first, then those that ended by
        # it, each read on its own; in one query the end_time index was walked back
        # from the newest job of all, past every job that started later (a month
        # a year back: 900,000 rows, 0.7-1.6 s). The running ones are found apart
        # (OFFSET 0: planned without the page's order), by whichever of the start
        # and end indexes is narrower at "until", then ordered.
        running = sql.SQL("(SELECT * FROM job_data j WHERE {} AND (j.end_time > %(until)s"
                          " OR j.end_time IS NULL) OFFSET 0)").format(where)
        rows = page(running, where, limit, 0, {})
        if len(rows) < limit:
            rows += page(sql.SQL("job_data"), sql.SQL("{} AND j.end_time <= %(until)s").format(
                where), limit - len(rows), 0, {})
    else:
        base = _WITH_EFFICIENCY if sort == "cpu_eff" else sql.SQL("job_data")
        extra: dict[str, Any] = {}
        if after is not None:
            seek, extra = _after_clause(sort, descending, nulls_first, *after)
            where = sql.SQL("{} AND {}").format(where, seek)
        rows = page(base, where, limit, offset, extra)
    total = -1
    if count:
        total_query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM job_data j WHERE {where} LIMIT %(cap)s) c"
        ).format(where=counted)
        total = int(conn.execute(total_query, params | {"cap": COUNT_LIMIT + 1}).fetchone()[0])
    return pl.DataFrame(rows, schema=JOB_LIST_SCHEMA, orient="row"), total


#: the list's column holding each sort's value (``page_key``)
SORT_COLUMNS = {"jobid": "jobid", "user": "user", "account": "account",
                "partition": "partition", "name": "name", "state": "state", "start": "start",
                "end": "end", "nodes": "nodes", "runtime": "runtime", "cpu_eff": "cpu_eff"}


def page_key(row: dict[str, Any], sort: str) -> tuple[Any, str]:
    """(sort value, job id) of a listed row: ``after`` for the next page."""
    return row[SORT_COLUMNS[sort]], row["jobid"]


def _after_clause(sort: str, descending: bool, nulls_first: bool, value: Any, jobid: str
                  ) -> tuple[sql.Composable, dict[str, Any]]:
    """The rows after (value, jobid) in the list's order (``ORDER BY x dir, jobid dir``,
    NULLs of x first or last)."""
    cmp = "<" if descending else ">"
    params: dict[str, Any] = {"after_id": jobid, "after_v": value}
    if sort == "jobid":  # ordered by length, then text: "999" before "1000"
        return sql.SQL(f"(length(j.jobid), j.jobid) {cmp} (length(%(after_id)s::text),"
                       " %(after_id)s)"), params
    col = SORT_KEYS[sort].split()[0]
    if value is None:  # within the NULLs: by job id; when they come first, then the rest
        clause = f"({col} IS NULL AND j.jobid {cmp} %(after_id)s)"
        if nulls_first:
            clause = f"({clause} OR {col} IS NOT NULL)"
    else:
        clause = f"({col}, j.jobid) {cmp} (%(after_v)s, %(after_id)s)"
        if not nulls_first:
            clause = f"({clause} OR {col} IS NULL)"
    return sql.SQL(clause), params


#: Filter choices are cached this long per process: DISTINCT over a million
#: jobs costs a few hundred milliseconds, and new states or partitions are rare.
CHOICES_TTL_S = 300.0
_CHOICES: dict[tuple[str, Viewer], tuple[float, list[str]]] = {}


def distinct_values(conn: psycopg.Connection, column: str, viewer: Viewer = STAFF) -> list[str]:
    """Choices for a select filter (state, partition), among the viewer's jobs."""
    if column not in ("state", "partition"):
        raise ValueError(column)
    key = (column, viewer)
    cached = _CHOICES.get(key)
    if cached and time.monotonic() - cached[0] < CHOICES_TTL_S:
        return cached[1]
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        "SELECT DISTINCT {c} FROM job_data j WHERE {c} IS NOT NULL AND {s} ORDER BY 1"
    ).format(c=sql.Identifier(column), s=scope)
    values = [row[0] for row in conn.execute(query, params).fetchall()]
    _CHOICES[key] = (time.monotonic(), values)
    return values


def job_states(conn: psycopg.Connection, viewer: Viewer = STAFF) -> list[str]:
    return distinct_values(conn, "state", viewer)


def flag_names(conn: psycopg.Connection, cluster: str | None = None) -> list[str]:
    """Flags raised on ``cluster`` (the search form's choices)."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT flag FROM job_flags WHERE cluster = %s ORDER BY 1",
        (cluster_name(cluster),))]


def job_record(
    conn: psycopg.Connection, jobid: str, viewer: Viewer = STAFF
) -> dict[str, Any] | None:
    """The accounting row of one job, or None when there is none the viewer may see.

    A job that exists but belongs to someone else is answered exactly like a
    job that does not exist, so job ids cannot be probed.
    """
    if not jobid or not valid_text(jobid):
        return None
    scope, params = scope_clause(viewer)
    query = sql.SQL("SELECT * FROM job_data j WHERE j.jobid = %(jobid)s AND {s}").format(s=scope)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params | {"jobid": jobid}).fetchone()


def job_metrics(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                ) -> pl.DataFrame:
    """Every metric computed for a job: metric, value (None = not computable), unit, reason.

    Call only for a job ``job_record`` returned for the viewer (its ``cluster``).
    """
    rows = conn.execute(
        "SELECT metric, value, unit, reason FROM job_metrics WHERE cluster = %s AND jobid = %s"
        " ORDER BY metric", (cluster_name(cluster), jobid),
    ).fetchall()
    schema = {"metric": pl.Utf8, "value": pl.Float64, "unit": pl.Utf8, "reason": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row")


def efficiency_sparklines(conn: psycopg.Connection, jobids: list[str],
                          points: int = 24, cluster: str | None = None
                          ) -> dict[str, list[float]]:
    """Busy cores over the allocation, in ``points`` steps of each job's run time, from
    ``job_series`` (the job list's sparkline). Call only with jobs the viewer may see;
    a job without stored series (running, or not built yet) is absent."""
    ids = [i for i in jobids if valid_text(i)]
    if not ids:
        return {}
    rows = conn.execute(
        """
        SELECT s.jobid, least(%(n)s - 1, floor(%(n)s * extract(epoch FROM s.time - j.start_time)
                 / greatest(extract(epoch FROM j.end_time - j.start_time), 1)))::int AS k,
               sum(s.value) / count(DISTINCT s.time) / greatest(j.ncpus, 1)
        FROM job_series s JOIN job_data j ON j.cluster = s.cluster AND j.jobid = s.jobid
        WHERE s.cluster = %(c)s AND s.jobid = ANY(%(ids)s) AND s.series = 'cpu_busy'
        GROUP BY s.jobid, k, j.ncpus ORDER BY s.jobid, k
        """, {"ids": ids, "n": points, "c": cluster_name(cluster)}).fetchall()
    out: dict[str, list[float]] = {}
    for jobid, _, value in rows:
        out.setdefault(jobid, []).append(float(value or 0.0))
    return out


def provisional_metrics(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                        ) -> pl.DataFrame:
    """A running job's metrics so far (same columns as ``job_metrics``), computed now by
    the pipeline's own metric functions (``job_load.provisional_metrics``).

    Call only for a job ``job_record`` returned for the viewer.
    """
    from hpcperfstats.jobs.load import provisional_metrics as so_far

    return so_far(conn, jobid, cluster).select("metric", "value", "unit", "reason").sort("metric")


def metrics_for_jobs(conn: psycopg.Connection, jobids: list[str], viewer: Viewer) -> pl.DataFrame:
    """Metrics of several jobs (the compare page), only those the viewer may see."""
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        "SELECT m.jobid, m.metric, m.value, m.unit, m.reason FROM job_metrics m"
        " JOIN job_data j ON j.cluster = m.cluster AND j.jobid = m.jobid"
        " WHERE m.jobid = ANY(%(ids)s) AND {s}"
    ).format(s=scope)
    ids = [i for i in jobids if valid_text(i)]
    rows = conn.execute(query, params | {"ids": ids}).fetchall()
    schema = {"jobid": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "unit": pl.Utf8,
              "reason": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _optional_table(conn: psycopg.Connection, table: str, jobid: str, order: str,
                    cluster: str | None) -> pl.DataFrame:
    """Every column of a later stage's table for one job of ``cluster`` (empty before
    that stage ran)."""
    with conn.cursor(row_factory=dict_row) as cur:
        query = sql.SQL("SELECT * FROM {t} WHERE cluster = %s AND jobid = %s").format(
            t=sql.Identifier(table))
        rows = cur.execute(query, (cluster_name(cluster), jobid)).fetchall()
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.sort(order) if order in frame.columns else frame


def job_flags(conn: psycopg.Connection, jobid: str, cluster: str | None = None
              ) -> pl.DataFrame:
    """Flags raised for a job (jobid, flag, message, ..., rule_version); may be empty."""
    return _optional_table(conn, "job_flags", jobid, "flag", cluster)


def job_applications(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                     ) -> pl.DataFrame:
    """Applications of a job (one row per application and executable); may be empty."""
    return _optional_table(conn, "job_applications", jobid, "application", cluster)


def may_read_script(job: dict[str, Any], viewer: Viewer) -> bool:
    """A job script is its owner's data: the owner and staff read it, nobody else (an
    account-mate who may see the job under ``HPCPERF_SHARE_ACCOUNTS`` does not)."""
    return viewer.staff or (viewer.user is not None and viewer.user == job.get("username"))


def job_script(conn: psycopg.Connection, job: dict[str, Any], viewer: Viewer
               ) -> dict[str, Any] | None:
    """The job's stored script (script, size_bytes, truncated, problem), or None: none
    stored, or ``viewer`` may not read it. The rule is applied in SQL too (the job's
    row in the viewer's scope, and its owner the viewer unless staff)."""
    if not may_read_script(job, viewer):
        return None
    scope, params = scope_clause(viewer)
    query = sql.SQL(
        "SELECT s.script, s.size_bytes, s.truncated, s.problem FROM job_scripts s"
        " JOIN job_data j ON j.cluster = s.cluster AND j.jobid = s.jobid"
        " WHERE s.cluster = %(c)s AND s.jobid = %(jobid)s AND {s}"
        " AND (%(staff)s OR j.username = %(reader)s)").format(s=scope)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params | {
            "c": job["cluster"], "jobid": job["jobid"], "staff": viewer.staff,
            "reader": viewer.user}).fetchone()


APP_SUMMARY_SCHEMA = {
    "application": pl.Utf8, "category": pl.Utf8, "jobs": pl.Int64, "users": pl.Int64,
    "core_hours": pl.Float64, "gpu_hours": pl.Float64, "median_cpu_efficiency": pl.Float64,
    "top_flags": pl.Utf8,
}
#: flags listed per application on the summary page
TOP_FLAGS = 3


def application_summary(
    conn: psycopg.Connection, viewer: Viewer, since: datetime, until: datetime,
    application: str | None = None, *, pooled: bool = False,
) -> pl.DataFrame:
    """Per application, over the jobs the viewer may see that ended in [since, until):
    jobs, users, core- and GPU-hours (each job's hours times the application's
    share of it, so a job's hours are not counted twice), median CPU efficiency
    of those jobs, and the most common flags (``name (jobs)``). Researchers get
    their own jobs only (``scope_clause``); with ``pooled`` everyone's jobs, but
    only the applications whose jobs pass the privacy rule
    (``scope_clause(pooled=True)``: enough jobs of enough users)."""
    # pooled: everyone's jobs on the viewer's cluster (the guard below keeps it private)
    scope, params = cluster_clause(viewer) if pooled else scope_clause(viewer)
    guard, guard_params = scope_clause(viewer, "aj", pooled=True) if pooled else (
        sql.SQL("TRUE"), {})
    params |= guard_params
    if application is not None and not valid_text(application):
        return pl.DataFrame(schema=APP_SUMMARY_SCHEMA)
    params |= {"since": since, "until": until, "app": application}
    jobs = sql.SQL(
        """
        SELECT a.application, a.category, a.share, j.jobid, j.username, j.elapsed_s,
               j.ncpus, j.ngpus
        FROM (SELECT jobid, application, min(category) AS category, sum(share) AS share
              FROM job_applications WHERE cluster = %(scope_cluster)s
              AND (%(app)s::text IS NULL OR application = %(app)s)
              GROUP BY jobid, application) a
        JOIN job_data j ON j.cluster = %(scope_cluster)s AND j.jobid = a.jobid
        WHERE {scope} AND j.end_time >= %(since)s AND j.end_time < %(until)s
        """
    ).format(scope=scope)
    query = sql.SQL(
        """
        WITH aj AS ({jobs})
        SELECT aj.application, min(aj.category), count(*), count(DISTINCT aj.username),
               sum(coalesce(aj.share, 0) * aj.elapsed_s * aj.ncpus) / 3600.0,
               sum(coalesce(aj.share, 0) * aj.elapsed_s * coalesce(aj.ngpus, 0)) / 3600.0,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY m.value)
        FROM aj LEFT JOIN job_metrics m ON m.cluster = %(scope_cluster)s
             AND m.jobid = aj.jobid AND m.metric = 'cpu_efficiency'
        GROUP BY aj.application HAVING {guard}
        """
    ).format(jobs=jobs, guard=guard)
    rows = conn.execute(query, params).fetchall()
    flags = conn.execute(sql.SQL(
        "WITH aj AS ({jobs}) SELECT aj.application, f.flag, count(DISTINCT f.jobid)"
        " FROM aj JOIN job_flags f ON f.cluster = %(scope_cluster)s AND f.jobid = aj.jobid"
        " GROUP BY 1, 2"
    ).format(jobs=jobs), params).fetchall()
    top: dict[str, list[tuple[int, str]]] = {}
    for app, flag, n in flags:
        top.setdefault(app, []).append((-n, flag))
    out = [(*r, ", ".join(f"{f} ({-n})" for n, f in sorted(top.get(r[0], []))[:TOP_FLAGS]))
           for r in rows]
    return pl.DataFrame(out, schema=APP_SUMMARY_SCHEMA, orient="row").sort(
        ["core_hours", "application"], descending=[True, False], nulls_last=True)


def application_names(conn: psycopg.Connection, viewer: Viewer = STAFF) -> list[str]:
    """Applications of this cluster's jobs the viewer may see (the search form's choices)."""
    scope, params = scope_clause(viewer)
    rows = conn.execute(sql.SQL(
        "SELECT DISTINCT a.application FROM job_applications a JOIN job_data j"
        " ON j.cluster = a.cluster AND j.jobid = a.jobid WHERE {scope} ORDER BY 1"
    ).format(scope=scope), params).fetchall()
    return [r[0] for r in rows]


def job_coverage(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                 ) -> pl.DataFrame:
    """Per-host data coverage of a job from ``job_coverage``; may be empty."""
    return _optional_table(conn, "job_coverage", jobid, "host", cluster)


def user_summary(
    conn: psycopg.Connection, viewer: Viewer, *, user: str | None, account: str | None,
    since: datetime | None, until: datetime | None,
) -> dict[str, Any]:
    """Aggregate efficiency of a user's or account's jobs in a range (the viewer's part)."""
    filt = JobFilter(user=user, account=account, since=since, until=until, exact=True)
    return jobs_summary(conn, filt, viewer)


#: Core-hours of a job (run time x allocated cores) and the part no core used: what the
#: user page sums per user; a job without a CPU efficiency wastes nothing we can show.
_CORE_HOURS = sql.SQL("j.elapsed_s::float8 * j.ncpus / 3600.0")
#: States a job counts as failed in (the user page's "failed").
_FAILED = sql.SQL("j.state IN ('FAILED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL')")
_WASTED = sql.SQL("j.elapsed_s::float8 * j.ncpus * greatest(1 - m.value, 0) / 3600.0")
#: What the user page adds up over a set of jobs (all of them, or each user's).
_TOTALS = sql.SQL(
    """count(*) AS jobs,
       count(*) FILTER (WHERE j.state = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE {failed}) AS failed,
       coalesce(sum({core}), 0) AS core_hours,
       coalesce(sum({wasted}), 0) AS wasted_core_hours,
       sum(j.elapsed_s * j.ncpus * m.value) / nullif(sum(j.elapsed_s * j.ncpus)
           FILTER (WHERE m.value IS NOT NULL), 0) AS cpu_efficiency"""
).format(failed=_FAILED, core=_CORE_HOURS, wasted=_WASTED)
#: The jobs ``filt`` matches with their CPU efficiency (``{where}``: job_filter_clause).
_MATCHED_WITH_EFFICIENCY = sql.SQL(
    """FROM job_data j
       LEFT JOIN job_metrics m ON m.cluster = j.cluster AND m.jobid = j.jobid
            AND m.metric = 'cpu_efficiency'
       WHERE {where}""")


def jobs_summary(conn: psycopg.Connection, filt: JobFilter, viewer: Viewer) -> dict[str, Any]:
    """Counts by outcome, core-hours, wasted core-hours and core-hour weighted CPU
    efficiency of the jobs ``filt`` matches that the viewer may see."""
    where, params = job_filter_clause(conn, filt, viewer)
    query = sql.SQL("SELECT {totals} {jobs}").format(
        totals=_TOTALS, jobs=_MATCHED_WITH_EFFICIENCY.format(where=where))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


USER_BREAKDOWN_SCHEMA = {
    "user": pl.Utf8, "jobs": pl.Int64, "failed": pl.Int64, "core_hours": pl.Float64,
    "wasted_core_hours": pl.Float64, "cpu_efficiency": pl.Float64,
}


def user_breakdown(conn: psycopg.Connection, filt: JobFilter, viewer: Viewer, *,
                   order: str = "core_hours", limit: int | None = 50) -> pl.DataFrame:
    """Per user, over the jobs ``filt`` matches that the viewer may see: jobs, failed,
    core-hours, wasted core-hours (allocated core-hours no core used: core-hours x
    (1 - CPU efficiency)) and core-hour weighted CPU efficiency; the ``limit`` users
    with the most ``order`` (``core_hours`` or ``wasted_core_hours``) first
    (``limit`` None: every user).

    Scoped like every job query (``scope_clause``): a researcher's breakdown holds
    only jobs they may open one by one, so it tells them nothing new."""
    if order not in ("core_hours", "wasted_core_hours"):
        raise ValueError(order)
    _, users = summary_and_breakdown(conn, filt, viewer)
    users = users.sort([order, "user"], descending=[True, False], nulls_last=True)
    return users if limit is None else users.head(limit)


def summary_and_breakdown(conn: psycopg.Connection, filt: JobFilter, viewer: Viewer
                          ) -> tuple[dict[str, Any], pl.DataFrame]:
    """``jobs_summary`` and every user's ``user_breakdown`` row (most core-hours
    first) in one pass over the jobs (``GROUPING SETS``): the users page over
    a month of a large cluster reads 86,000 jobs and their efficiencies once,
    not once per figure."""
    where, params = job_filter_clause(conn, filt, viewer)
    query = sql.SQL(
        "SELECT GROUPING(j.username) = 1 AS everyone, j.username AS user, {totals} {jobs}"
        " GROUP BY GROUPING SETS ((j.username), ())"
    ).format(totals=_TOTALS, jobs=_MATCHED_WITH_EFFICIENCY.format(where=where))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SET random_page_cost = {}").format(
            sql.Literal(TOTALS_RANDOM_PAGE_COST)))
        rows = cur.execute(query, params).fetchall()
        cur.execute("RESET random_page_cost")  # the connection's next queries: the default
    totals = next(r for r in rows if r.pop("everyone"))
    del totals["user"]
    users = pl.DataFrame([r for r in rows if r is not totals], schema={
        "user": pl.Utf8, "jobs": pl.Int64, "completed": pl.Int64, "failed": pl.Int64,
        "core_hours": pl.Float64, "wasted_core_hours": pl.Float64,
        "cpu_efficiency": pl.Float64})
    users = users.select(list(USER_BREAKDOWN_SCHEMA)).sort(
        ["core_hours", "user"], descending=[True, False], nulls_last=True)
    return totals, users


def flag_counts(conn: psycopg.Connection, filt: JobFilter, viewer: Viewer) -> list[tuple[str, int]]:
    """Flags raised on the jobs ``filt`` matches that the viewer may see: (flag, jobs),
    most frequent first."""
    where, params = job_filter_clause(conn, filt, viewer)
    query = sql.SQL(
        "SELECT f.flag, count(DISTINCT f.jobid) FROM job_flags f JOIN job_data j"
        " ON j.cluster = f.cluster AND j.jobid = f.jobid WHERE {where}"
        " GROUP BY f.flag ORDER BY 2 DESC, 1"
    ).format(where=where)
    return [(flag, int(n)) for flag, n in conn.execute(query, params).fetchall()]


def cluster_summary(
    conn: psycopg.Connection, viewer: Viewer, since: datetime, until: datetime
) -> dict[str, Any] | None:
    """Everyone's jobs that ended in [since, until]: count, users, core-hours and
    core-hour weighted CPU efficiency; None when withheld from this viewer
    (``scope_clause(pooled=True)``: too few jobs or users to hide any one)."""
    guard, params = scope_clause(viewer, pooled=True)
    on_cluster, cluster_params = cluster_clause(viewer)
    params |= cluster_params
    query = sql.SQL(
        """
        SELECT count(*) AS jobs, count(DISTINCT j.username) AS users,
               sum(j.elapsed_s * j.ncpus) / 3600.0 AS core_hours,
               sum(j.elapsed_s * j.ncpus * m.value) / nullif(sum(j.elapsed_s * j.ncpus)
                   FILTER (WHERE m.value IS NOT NULL), 0) AS cpu_efficiency
        FROM job_data j
        LEFT JOIN job_metrics m ON m.cluster = j.cluster AND m.jobid = j.jobid
             AND m.metric = 'cpu_efficiency'
        WHERE {on_cluster} AND j.end_time >= %(since)s AND j.end_time <= %(until)s
        HAVING {guard}
        """
    ).format(guard=guard, on_cluster=on_cluster)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params | {"since": since, "until": until}).fetchone()


#: Peer context: metrics a job is ranked on among comparable jobs, and the window.
PEER_METRICS = ("cpu_efficiency", "mem_hwm_fraction", "gpu_util")
PEER_DAYS = 30


def peer_context(conn: psycopg.Connection, job: dict[str, Any], values: dict[str, float | None],
                 viewer: Viewer, metrics: tuple[str, ...] = PEER_METRICS,
                 ) -> dict[str, dict[str, Any] | None]:
    """Where a job stands among the jobs of its partition that ended in the
    :data:`PEER_DAYS` days before it (XDMoD's percentiles): per metric of
    ``metrics`` with a value, the share of peers below it (ties count half),
    their median and 10th/25th/75th/90th percentiles (``p10``...: the
    footprint's norms), and how many jobs and users the pool holds.

    The pool is everyone's jobs, so it is an aggregate under the privacy rule
    (``scope_clause(pooled=True)``): a researcher gets None for a metric whose
    pool has fewer than ``MIN_POOL_JOBS`` jobs of ``MIN_POOL_USERS`` users.
    """
    end = job.get("end_time") or datetime.now(UTC)
    guard, params = scope_clause(viewer, pooled=True)
    on_cluster, cluster_params = cluster_clause(viewer)
    params |= cluster_params
    query = sql.SQL(
        """
        SELECT count(*) AS jobs, count(DISTINCT j.username) AS users,
               avg(CASE WHEN m.value < %(v)s THEN 1.0 WHEN m.value = %(v)s THEN 0.5
                   ELSE 0.0 END) AS below,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY m.value) AS median,
               percentile_cont(ARRAY[0.1, 0.25, 0.75, 0.9]) WITHIN GROUP (ORDER BY m.value)
                   AS quantiles
        FROM job_data j JOIN job_metrics m ON m.cluster = j.cluster AND m.jobid = j.jobid
             AND m.metric = %(metric)s
        WHERE {on_cluster} AND j.partition IS NOT DISTINCT FROM %(partition)s
          AND m.value IS NOT NULL
          AND j.end_time > %(since)s AND j.end_time <= %(until)s
        HAVING count(*) > 0 AND {guard}
        """
    ).format(guard=guard, on_cluster=on_cluster)
    out: dict[str, dict[str, Any] | None] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for metric in metrics:
            value = values.get(metric)
            if value is None:
                continue
            row = cur.execute(query, params | {
                "v": value, "metric": metric, "partition": job.get("partition"),
                "since": end - timedelta(days=PEER_DAYS), "until": end}).fetchone()
            if row is not None:
                row.update(zip(("p10", "p25", "p75", "p90"), row.pop("quantiles"), strict=True))
            out[metric] = row
    return out


def used_sources(conn: psycopg.Connection, jobid: str, cluster: str | None = None
                 ) -> dict[str, str]:
    """Which CPU/memory source fed a job's metrics."""
    rows = conn.execute(
        "SELECT metric, source FROM job_metrics WHERE cluster = %s AND jobid = %s"
        " AND source IS NOT NULL", (cluster_name(cluster), jobid),
    ).fetchall()
    return {metric: source for metric, source in rows}
