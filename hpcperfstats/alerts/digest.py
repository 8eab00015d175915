"""A researcher's digest: each alerted job with its number, advice and ``#SBATCH`` lines.

Pure: the caller gathers the alerts and the job facts (``collect_items``
reads them); ``render`` makes the plain-text and HTML bodies and the mail.
The advice sentence and the ``#SBATCH`` lines come from
``hpcperfstats.report.presentation``, the same words as the job page and
``hpcperf job``. Everything from the database is escaped in the HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import quote

import psycopg

from hpcperfstats.report.presentation import advice, sbatch_advice
from hpcperfstats.report.terminal import load_report

WASTE_UNITS = {"core_hours": "core-hours", "gpu_hours": "GPU-hours", "node_hours": "node-hours"}


@dataclass(frozen=True)
class Item:
    """One alert of a digest, with what the researcher needs to act on it."""

    jobid: str
    jobname: str
    partition: str
    ended: str  # "YYYY-MM-DD HH:MM"
    rule: str
    severity: str
    message: str
    waste: float | None
    waste_kind: str | None
    advice: str  # the sentence
    sbatch: tuple[tuple[str, str], ...] = ()  # (line, why)


@dataclass(frozen=True)
class Digest:
    user: str
    day: date
    cluster: str
    items: tuple[Item, ...]
    held: int = 0
    base_url: str = ""
    contact: str = ""
    keys: tuple[tuple[str, str], ...] = field(default=())  # (jobid, rule) it carries

    @property
    def severe(self) -> bool:
        return any(i.severity == "severe" for i in self.items)

    def link(self, jobid: str) -> str:
        return f"{self.base_url.rstrip('/')}/job?jobid={quote(jobid, safe='')}"


def collect_items(conn: psycopg.Connection, alerts: Sequence[dict]) -> list[Item]:
    """Items for alert rows (``store.pending_alerts`` rows), with their jobs' facts."""
    reports: dict[str, dict | None] = {}
    out = []
    for a in alerts:
        if a["jobid"] not in reports:
            reports[a["jobid"]] = load_report(conn, a["jobid"])
        report = reports[a["jobid"]]
        job = report["job"] if report else {}
        values = {m: v.get("value") for m, v in (report or {}).get("metrics", {}).items()}
        lines: list[dict] = []
        if report and a["advice"]:
            run_s = job.get("elapsed_s")
            lines = sbatch_advice(job, values, [{"flag": a["rule"], "advice": a["advice"]}],
                                  run_s)
        out.append(Item(
            jobid=a["jobid"], jobname=job.get("jobname") or "", partition=job.get("partition")
            or "", ended=(job.get("end_time") or "")[:16].replace("T", " "), rule=a["rule"],
            severity=a["severity"], message=a["message"], waste=a["waste"],
            waste_kind=a["waste_kind"], advice=advice(a["rule"], a["advice"]),
            sbatch=tuple((x["line"], x["why"]) for x in lines)))
    return out


def _waste(item: Item) -> str | None:
    if item.waste is None or item.waste_kind is None:
        return None
    return f"{item.waste:,.1f} {WASTE_UNITS.get(item.waste_kind, item.waste_kind)}"


def subject(d: Digest) -> str:
    jobs = len({i.jobid for i in d.items})
    return (f"[hpcperfstats {d.cluster}] {jobs} job{'s' if jobs != 1 else ''} to look at "
            f"({d.day.isoformat()})")


def _held_text(held: int) -> str:
    return (f"{held} more alert{'s are' if held != 1 else ' is'} held back "
            "and will come in the next digest.")


def render_text(d: Digest) -> str:
    lines = [f"Hello {d.user},", "",
             f"Some of your jobs on {d.cluster} left much of what they reserved unused.", ""]
    for i in d.items:
        lines.append(f"Job {i.jobid} ({i.jobname}), partition {i.partition}, "
                     f"ended {i.ended} UTC [{i.severity}]")
        lines.append(f"  {i.message}")
        if (w := _waste(i)) is not None:
            lines.append(f"  Lost: {w}")
        if i.advice:
            lines.append(f"  Advice: {i.advice}")
        if i.sbatch:
            lines.append("  Change in your job script:")
            lines += [f"    {line}    ({why})" for line, why in i.sbatch]
        lines += [f"  Details: {d.link(i.jobid)}", ""]
    if d.held:
        lines += [_held_text(d.held), ""]
    if d.contact:
        lines += [d.contact, ""]
    return "\n".join(lines)


def render_html(d: Digest) -> str:
    e = html.escape
    parts = [f"<p>Hello {e(d.user)},</p>",
             f"<p>Some of your jobs on {e(d.cluster)} left much of what they reserved "
             "unused.</p>"]
    for i in d.items:
        parts.append(f"<h3>Job <a href=\"{e(d.link(i.jobid))}\">{e(i.jobid)}</a> "
                     f"({e(i.jobname)}), partition {e(i.partition)}, ended {e(i.ended)} UTC "
                     f"[{e(i.severity)}]</h3>")
        parts.append(f"<p>{e(i.message)}</p>")
        if (w := _waste(i)) is not None:
            parts.append(f"<p>Lost: {e(w)}</p>")
        if i.advice:
            parts.append(f"<p>Advice: {e(i.advice)}</p>")
        if i.sbatch:
            rows = "\n".join(f"{e(line)}    ({e(why)})" for line, why in i.sbatch)
            parts.append(f"<p>Change in your job script:</p><pre>{rows}</pre>")
    if d.held:
        parts.append(f"<p>{e(_held_text(d.held))}</p>")
    if d.contact:
        parts.append(f"<p>{e(d.contact)}</p>")
    return "<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def message(d: Digest, sender: str, to: str, cc: Sequence[str] = ()) -> EmailMessage:
    """The mail: plain text first, HTML as the alternative."""
    msg = EmailMessage()
    msg["Subject"] = subject(d)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="hpcperfstats")
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(render_text(d))
    msg.add_alternative(render_html(d), subtype="html")
    return msg


def webhook_payload(d: Digest) -> dict:
    """Slack/Mattermost incoming-webhook JSON: one line per alert."""
    lines = [f"*{d.user}* on {d.cluster} ({d.day.isoformat()}):"]
    # plain URLs: both Slack and Mattermost link them (their markup differs)
    lines += [f"- job {i.jobid} [{i.severity}] {i.message} {d.link(i.jobid)}"
              for i in d.items]
    if d.held:
        lines.append(_held_text(d.held))
    return {"text": "\n".join(lines), "username": "hpcperfstats"}
