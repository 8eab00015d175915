"""``/applications``: what ran on the cluster, per application, and one job's applications.

For staff: per application (from ``job_applications``) the jobs, users,
core- and GPU-hours (share-weighted), median CPU efficiency and most common
flags over a range, each name linking to the job list searched by it.
Researchers get the same page over their own jobs (``data.scope_clause``).
``applications_view`` is the job page's small section.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, data
from dashboards.auth import Viewer
from dashboards.layout import fmt_time, html, page, printable, query_arg, time_arg
from hpcperfstats.apps.detect import by_application

DEFAULT_RANGE = timedelta(days=30)


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def summary_table(summary: pl.DataFrame) -> str:
    """The per-application table as escaped HTML."""
    head = ("<tr><th>Application</th><th>Category</th><th>Jobs</th><th>Users</th>"
            "<th>Core-hours</th><th>GPU-hours</th><th>Median CPU efficiency</th>"
            "<th>Most common flags</th></tr>")
    rows = []
    for r in summary.iter_rows(named=True):
        link = f"jobs?application={quote(r['application'], safe='')}"
        eff = r["median_cpu_efficiency"]
        rows.append(
            f"<tr><td><a href='{escape(link)}'>{escape(printable(r['application']))}</a></td>"
            f"<td>{escape(printable(r['category'] or ''))}</td><td>{r['jobs']}</td>"
            f"<td>{r['users']}</td><td>{_num(r['core_hours'])}</td>"
            f"<td>{_num(r['gpu_hours'], 1)}</td>"
            f"<td>{'–' if eff is None else f'{eff:.0%}'}</td>"
            f"<td>{escape(printable(r['top_flags'] or ''))}</td></tr>")
    return f"<table class='hp-facts'>{head}{''.join(rows)}</table>"


def applications_view(rows: pl.DataFrame) -> pn.pane.HTML:
    """A job's applications with their shares, and the executables no rule names."""
    if rows.is_empty():
        return html('<p class="hp-note">No applications recorded for this job (no process '
                    'data, or not computed yet).</p>')
    basis = rows["basis"][0]
    parts = []
    for r in by_application(rows).iter_rows(named=True):
        share = "–" if r["share"] is None else f"{r['share']:.0%}"
        name = escape(printable(r["application"]))
        if r["known"]:
            link = escape(f"applications?application={quote(r['application'], safe='')}")
            name = f"<a href='{link}'>{name}</a>"
        parts.append(f"<tr><td>{name}</td><td>{escape(printable(r['category']))}</td>"
                     f"<td>{share}</td><td>{escape(printable(r['executables']))}</td></tr>")
    what = "CPU time" if basis == "cpu" else "resident memory (no CPU time per process)"
    return html("<table class='hp-facts'><tr><th>Application</th><th>Category</th>"
                "<th>Share</th><th>Executables</th></tr>" + "".join(parts) + "</table>"
                f"<p class='hp-note'>Share of the job's {what}.</p>")


def applications_page(viewer: Viewer, application: str | None, start: datetime | None,
                      end: datetime | None):
    end = end or datetime.now(UTC)  # exclusive: a "to" date's next midnight (time_arg)
    start = start or end - DEFAULT_RANGE
    last_day = (end - timedelta(microseconds=1)).date()
    form = html(
        "<form method='get' style='display:flex;gap:10px;align-items:end'>"
        "<label>Application<br>"
        f"<input name='application' value='{escape(printable(application or ''))}'></label>"
        f"<label>From<br><input name='start' type='date' value='{start.date()}'></label>"
        f"<label>To<br><input name='end' type='date' value='{last_day}'></label>"
        "<button type='submit'>Show</button></form>")
    with data.connection() as conn:
        summary = data.application_summary(conn, viewer, start, end, application or None)
    whose = "all jobs" if viewer.staff else "your jobs"
    heading = html(
        "<h2 style='margin:0'>Applications</h2>"
        f"<p class='hp-note'>Over {whose} that ended between {escape(fmt_time(start))} and "
        f"{escape(fmt_time(end))}. Core- and GPU-hours are each job's times the "
        "application's share of its CPU time (memory where no CPU time per process was "
        "recorded); 'unknown' collects executables no rule names yet.</p>")
    body = (summary_table(summary) if not summary.is_empty()
            else "<p class='hp-note'>No applications recorded in this range.</p>")
    return page([pn.Column(form, heading, html(body), sizing_mode="stretch_width")],
                active="applications", viewer=viewer)


if __name__.startswith("bokeh"):
    applications_page(auth.current(), query_arg("application"), time_arg("start"),
                      time_arg("end", to_date=True)).servable(title="Applications · hpcperfstats")
