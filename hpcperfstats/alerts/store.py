"""The alert history: what was found, held, sent or opted out, once per job and rule.

``alert_history`` is keyed by (cluster, jobid, rule): recording the same
candidate again changes nothing, so re-running a day never reports a job
twice. A row is ``pending`` until a digest that carries it is delivered
(then ``sent`` with its ``digest_day``); over a user's daily cap it stays
pending and goes in a later digest. Opted-out users' alerts are kept as
``opted_out`` (staff can see what they would have received) and never sent;
alerts of a user name that cannot be a mail address are set aside as
``undeliverable`` with the reason, for staff to see, and not retried.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import psycopg

from hpcperfstats.db.load import read_frame

DDL = """
CREATE TABLE IF NOT EXISTS alert_history (
    cluster      text NOT NULL,
    jobid        text NOT NULL,
    rule         text NOT NULL,
    username     text NOT NULL,
    severity     text NOT NULL,
    value        double precision,
    waste        double precision,
    waste_kind   text,
    message      text NOT NULL,
    advice       text,
    rule_version text NOT NULL,
    day          date NOT NULL,
    status       text NOT NULL DEFAULT 'pending',
    digest_day   date,
    sent_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, jobid, rule),
    CHECK (status IN ('pending', 'sent', 'opted_out', 'undeliverable'))
);
CREATE INDEX IF NOT EXISTS alert_history_pending
    ON alert_history (cluster, username, day) WHERE status = 'pending';
-- the search's default order (newest end first) read from an index, not a sort
-- of every job: the data API's and the search page's first page over 1 M jobs
CREATE INDEX IF NOT EXISTS job_data_end_desc ON job_data (end_time DESC NULLS LAST, jobid DESC);
CREATE TABLE IF NOT EXISTS api_tokens (
    cluster      text NOT NULL,
    token_id     text NOT NULL,
    username     text NOT NULL,
    token_hash   text NOT NULL,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz,
    PRIMARY KEY (cluster, token_id)
);
"""

#: order inside a digest (and who goes first under the cap): severe, older, job id
SEVERITY_RANK = {"severe": 0, "warning": 1, "info": 2}

PENDING_SCHEMA = {
    "jobid": pl.Utf8, "rule": pl.Utf8, "username": pl.Utf8, "severity": pl.Utf8,
    "value": pl.Float64, "waste": pl.Float64, "waste_kind": pl.Utf8, "message": pl.Utf8,
    "advice": pl.Utf8, "day": pl.Date,
}


def record_alerts(conn: psycopg.Connection, cluster: str, day: date, found: pl.DataFrame,
                  opted_out: set[str]) -> dict[str, int]:
    """Insert candidates not seen before (one transaction); counts of what was new."""
    new = {"pending": 0, "opted_out": 0}
    with conn.transaction(), conn.cursor() as cur:
        for row in found.iter_rows(named=True):
            status = "opted_out" if row["username"] in opted_out else "pending"
            cur.execute(
                "INSERT INTO alert_history (cluster, jobid, rule, username, severity, value,"
                " waste, waste_kind, message, advice, rule_version, day, status)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (cluster, jobid, rule) DO NOTHING",
                (cluster, row["jobid"], row["rule"], row["username"], row["severity"],
                 row["value"], row["waste"], row["waste_kind"], row["message"], row["advice"],
                 row["rule_version"], day, status))
            new[status] += cur.rowcount
    return new


def pending_alerts(conn: psycopg.Connection, cluster: str, upto: date) -> pl.DataFrame:
    """Pending alerts of jobs that ended up to ``upto``, in digest order."""
    frame = read_frame(
        conn,
        "SELECT jobid, rule, username, severity, value, waste, waste_kind, message, advice, day"
        " FROM alert_history WHERE cluster = %s AND status = 'pending' AND day <= %s",
        (cluster, upto), PENDING_SCHEMA)
    return (frame.with_columns(pl.col("severity").replace_strict(SEVERITY_RANK, default=9)
                               .alias("_rank"))
            .sort(["username", "_rank", "day", "jobid", "rule"]).drop("_rank"))


def sent_on(conn: psycopg.Connection, cluster: str, digest_day: date) -> dict[str, int]:
    """Alerts already delivered per user in ``digest_day``'s digest (counts against the cap)."""
    rows = conn.execute(
        "SELECT username, count(*) FROM alert_history WHERE cluster = %s AND status = 'sent'"
        " AND digest_day = %s GROUP BY username", (cluster, digest_day)).fetchall()
    return dict(rows)


def mark_sent(conn: psycopg.Connection, cluster: str, keys: list[tuple[str, str]],
              digest_day: date) -> None:
    """The alerts (jobid, rule) went out in ``digest_day``'s digest."""
    with conn.transaction():
        conn.cursor().executemany(
            "UPDATE alert_history SET status = 'sent', digest_day = %s, sent_at = now(),"
            " attempts = attempts + 1, last_error = NULL"
            " WHERE cluster = %s AND jobid = %s AND rule = %s AND status = 'pending'",
            [(digest_day, cluster, jobid, rule) for jobid, rule in keys])


def mark_failed(conn: psycopg.Connection, cluster: str, keys: list[tuple[str, str]],
                error: str) -> None:
    """A delivery failed: the alerts stay pending, with the attempt and the reason."""
    with conn.transaction():
        conn.cursor().executemany(
            "UPDATE alert_history SET attempts = attempts + 1, last_error = %s"
            " WHERE cluster = %s AND jobid = %s AND rule = %s AND status = 'pending'",
            [(error[:500], cluster, jobid, rule) for jobid, rule in keys])


def opt_out_pending(conn: psycopg.Connection, cluster: str, users: set[str]) -> int:
    """Users who opted out after their alerts were found: those alerts are never sent."""
    if not users:
        return 0
    with conn.transaction():
        cur = conn.execute(
            "UPDATE alert_history SET status = 'opted_out' WHERE cluster = %s"
            " AND status = 'pending' AND username = ANY(%s)", (cluster, sorted(users)))
    return cur.rowcount


def set_aside(conn: psycopg.Connection, cluster: str, keys: list[tuple[str, str]],
              reason: str) -> None:
    """Alerts that can never be delivered (no usable address): kept, with the reason."""
    with conn.transaction():
        conn.cursor().executemany(
            "UPDATE alert_history SET status = 'undeliverable', last_error = %s"
            " WHERE cluster = %s AND jobid = %s AND rule = %s AND status = 'pending'",
            [(reason, cluster, jobid, rule) for jobid, rule in keys])
