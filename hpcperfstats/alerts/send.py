"""A day of alerts: find them (``find_alerts``), then deliver the digests (``send_digests``).

Both run on a daily job partition (the day jobs ended). ``find_alerts``
records new candidates in ``alert_history``; ``send_digests`` sends every
researcher one digest with their pending alerts of that day and before,
severe first, at most ``HPCPERF_ALERT_CAP`` per digest day (the rest are
held and counted in the digest). An alert is marked sent only after its
digest was delivered; a failed delivery leaves it pending with the reason,
and the caller fails the run after trying every other researcher.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg

from hpcperfstats.alerts import store
from hpcperfstats.alerts.deliver import (
    DeliveryFailed,
    SmtpSettings,
    post_webhook,
    send_mail,
    write_dry_run,
)
from hpcperfstats.alerts.digest import Digest, collect_items, message, webhook_payload
from hpcperfstats.alerts.rules import AlertRule, evaluate_alerts
from hpcperfstats.archive.safepath import inside
from hpcperfstats.config import env, settings
from hpcperfstats.db.load import read_frame

log = logging.getLogger("hpcperf.alerts")

MODES = ("dry-run", "send")
#: a user name that may become a mail address and a file name
_MAILBOX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

JOBS_SCHEMA = {"jobid": pl.Utf8, "username": pl.Utf8, "account": pl.Utf8,
               "partition": pl.Utf8, "ncpus": pl.Int64, "ngpus": pl.Int64,
               "elapsed_s": pl.Int64}
METRICS_SCHEMA = {"jobid": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64,
                  "source": pl.Utf8}


@dataclass(frozen=True)
class AlertSettings:
    """Everything ``send_digests`` needs besides the mail server."""

    mode: str
    weekly: bool
    cap: int
    mail_domain: str | None
    sender: str
    staff: tuple[str, ...]
    contact: str
    base_url: str
    webhook_url: str | None
    opt_out_file: Path | None
    dry_run_dir: Path

    @classmethod
    def from_env(cls) -> AlertSettings:
        mode = env("ALERT_MODE").lower()
        if mode not in MODES:
            raise ValueError(f"HPCPERF_ALERT_MODE={mode!r}: expected one of {MODES}")
        digest = env("ALERT_DIGEST").lower()
        if digest not in ("daily", "weekly"):
            raise ValueError(f"HPCPERF_ALERT_DIGEST={digest!r}: expected daily or weekly")
        cap = int(env("ALERT_CAP"))
        if cap < 1:
            raise ValueError("HPCPERF_ALERT_CAP must be at least 1")
        opt_out = env("ALERT_OPT_OUT")
        return cls(mode=mode, weekly=digest == "weekly", cap=cap,
                   mail_domain=env("ALERT_MAIL_DOMAIN"), sender=env("ALERT_FROM"),
                   staff=tuple(a.strip() for a in (env("ALERT_STAFF") or "").split(",")
                               if a.strip()),
                   contact=env("ALERT_CONTACT") or "", base_url=env("PUBLIC_URL"),
                   webhook_url=env("ALERT_WEBHOOK_URL"),
                   opt_out_file=Path(opt_out) if opt_out else None,
                   dry_run_dir=settings().home / "alerts" / "dry-run")


def opted_out(path: Path | None) -> set[str]:
    """User names in the opt-out file (one a line, ``#`` comments); none without one."""
    if path is None:
        return set()
    names = set()
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def find_alerts(conn: psycopg.Connection, cluster: str, start: datetime, end: datetime,
                rules: list[AlertRule], opt_out: set[str]) -> dict[str, int]:
    """Record the alerts of jobs that ended in [start, end), day by day; counts of new rows."""
    from hpcperfstats.jobs.store import day_windows

    counts = {"found": 0, "pending": 0, "opted_out": 0}
    for day, nxt in day_windows(start, end):
        jobs = read_frame(
            conn, "SELECT jobid, username, account, partition, ncpus, ngpus, elapsed_s"
            " FROM job_data WHERE end_time >= %s AND end_time < %s", (day, nxt), JOBS_SCHEMA)
        metrics = read_frame(
            conn, "SELECT m.jobid, m.metric, m.value, m.source FROM job_metrics m"
            " JOIN job_data j USING (jobid) WHERE j.end_time >= %s AND j.end_time < %s",
            (day, nxt), METRICS_SCHEMA)
        found = evaluate_alerts(jobs, metrics, rules)
        unowned = found.filter(pl.col("username").fill_null("") == "")
        if unowned.height:  # accounting without a user: nobody to tell; say so, go on
            log.warning("%d alert(s) of jobs without a user name skipped: %s", unowned.height,
                        ", ".join(unowned["jobid"].head(10).to_list()))
            counts["no_user"] = counts.get("no_user", 0) + unowned.height
        found = found.filter(pl.col("username").fill_null("") != "")
        new = store.record_alerts(conn, cluster, day.date(), found, opt_out)
        counts["found"] += found.height
        for k, v in new.items():
            counts[k] += v
    return counts


@dataclass
class SendResult:
    digests: int = 0
    alerts: int = 0
    held: int = 0
    undeliverable: int = 0
    dry_run_files: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # user -> reason
    skipped: str = ""


def digest_due(day: date, weekly: bool) -> bool:
    """Daily digests every day; weekly ones on Sundays (the week Monday..Sunday)."""
    return not weekly or day.weekday() == 6


def send_digests(conn: psycopg.Connection, cluster: str, day: date, cfg: AlertSettings,
                 smtp: SmtpSettings) -> SendResult:
    """Each researcher's digest for ``day``; see the module docstring."""
    result = SendResult()
    if not digest_due(day, cfg.weekly):
        result.skipped = f"weekly digest: next on {day + timedelta(days=6 - day.weekday())}"
        return result
    store.opt_out_pending(conn, cluster, opted_out(cfg.opt_out_file))
    pending = store.pending_alerts(conn, cluster, day)
    already = store.sent_on(conn, cluster, day)
    for (user,), rows in pending.group_by(["username"], maintain_order=True):
        room = cfg.cap - already.get(user, 0)
        take = rows.head(max(room, 0)).to_dicts()
        held = rows.height - len(take)
        result.held += held
        if not take:
            continue
        keys = [(a["jobid"], a["rule"]) for a in take]
        if not _MAILBOX.fullmatch(user):
            store.set_aside(conn, cluster, keys, "user name not usable as a mail address")
            log.error("alerts of user %r set aside: not usable as a mail address", user[:80])
            result.undeliverable += len(keys)
            continue
        d = Digest(user=user, day=day, cluster=cluster, items=tuple(collect_items(conn, take)),
                   held=held, base_url=cfg.base_url, contact=cfg.contact, keys=tuple(keys))
        to = f"{user}@{cfg.mail_domain}" if cfg.mail_domain else user
        cc = cfg.staff if d.severe else ()
        msg = message(d, cfg.sender, to, cc)
        if cfg.mode == "dry-run":
            target = cfg.dry_run_dir / day.isoformat() / f"{user}.eml"
            path = write_dry_run(inside(cfg.dry_run_dir.parent, target), msg)
            result.dry_run_files.append(str(path))
            result.digests += 1
            continue
        try:
            if not cfg.mail_domain:
                raise DeliveryFailed("HPCPERF_ALERT_MAIL_DOMAIN is not set: no address")
            send_mail(msg, smtp)
        except DeliveryFailed as exc:
            store.mark_failed(conn, cluster, keys, str(exc))
            result.failed[user] = str(exc)
            continue
        store.mark_sent(conn, cluster, keys, day)
        result.digests += 1
        result.alerts += len(keys)
        if cfg.webhook_url:
            try:
                post_webhook(cfg.webhook_url, webhook_payload(d), smtp.retries,
                             smtp.retry_wait_s)
            except DeliveryFailed as exc:  # the mail went: the alert is not lost
                result.failed[f"webhook:{user}"] = str(exc)
    return result
