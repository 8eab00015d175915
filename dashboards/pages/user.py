"""``/user?user=...`` or ``/user?account=...``: one person's or project's jobs over a range.

Aggregate efficiency (core-hour weighted), counts by outcome, the flags
raised and the jobs themselves. Researchers land on their own jobs; asking
for someone else's returns nothing, because the queries are scoped.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote

import panel as pn

from dashboards import auth, data
from dashboards.auth import Viewer
from dashboards.layout import fmt_time, html, page, printable, query_arg, time_arg
from dashboards.pages.jobs import FORMATTERS, TITLES, WIDTHS, table_frame
from dashboards.pages.overview import tiles
from dashboards.units import human

DEFAULT_RANGE = timedelta(days=30)
MAX_JOBS = 500


def user_view(viewer: Viewer, user: str | None, account: str | None,
              start: datetime | None, end: datetime | None):
    if not user and not account:
        user = viewer.user if not viewer.staff else None
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_RANGE
    form = html(
        "<form method='get' style='display:flex;gap:10px;align-items:end'>"
        f"<label>User<br><input name='user' value='{escape(printable(user or ''))}'></label>"
        "<label>Account<br>"
        f"<input name='account' value='{escape(printable(account or ''))}'></label>"
        f"<label>From<br><input name='start' type='date' value='{start.date()}'></label>"
        f"<label>To<br><input name='end' type='date' value='{end.date()}'></label>"
        "<button type='submit'>Show</button></form>")
    if not user and not account:
        return page([form, html('<p class="hp-note">Give a user or an account.</p>')],
                    active="user", viewer=viewer)
    with data.connection() as conn:
        summary = data.user_summary(conn, viewer, user=user, account=account, since=start,
                                    until=end)
        filt = data.JobFilter(user=user, account=account, since=start, until=end, exact=True)
        jobs, total = data.list_jobs(conn, filt, viewer, limit=MAX_JOBS)
    who = " / ".join(x for x in (user and f"user {user}", account and f"account {account}") if x)
    flag_counts = Counter(f.strip() for fl in jobs["flags"].drop_nulls() for f in fl.split(","))
    flags = ", ".join(f"{name} ({n})" for name, n in flag_counts.most_common()) or "none"
    summary_tiles = tiles([
        (str(summary["jobs"]), "jobs"), (str(summary["completed"]), "completed"),
        (str(summary["failed"]), "failed"),
        (f"{float(summary['core_hours'] or 0):,.0f}", "core-hours"),
        (human(summary["cpu_efficiency"], "1"), "CPU efficiency (core-hour weighted)"),
    ])
    search = "jobs?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in
                                (("user", user), ("account", account)) if v)
    heading = html(
        f"<h2 style='margin:0'>{escape(printable(who))}</h2>"
        "<p class='hp-note'>Jobs that ran between "
        f"{escape(fmt_time(start))} and {escape(fmt_time(end))}. Flags: {escape(flags)}. "
        f"<a href='{escape(search)}'>Search these jobs</a></p>")
    table = pn.widgets.Tabulator(
        table_frame(jobs), titles=TITLES, formatters=FORMATTERS, hidden_columns=["link"],
        widths=WIDTHS,
        show_index=False, disabled=True, selectable=False, pagination="local", page_size=25,
        layout="fit_columns", sizing_mode="stretch_width",
        configuration={"placeholder": "No jobs in this range"},
    )
    shown = html(f'<p class="hp-note">Showing the newest {min(total, MAX_JOBS)} of '
                 f"{total} jobs.</p>")
    return page([pn.Column(form, heading, summary_tiles, shown, table,
                           sizing_mode="stretch_width")], active="user", viewer=viewer)


if __name__.startswith("bokeh"):
    user_view(auth.current(), query_arg("user"), query_arg("account"), time_arg("start"),
              time_arg("end")).servable(title="User · hpcperfstats")
