"""``/user?user=...`` or ``/user?account=...``: one person's or project's jobs over a range.

The page is the job search (``JobSearch``: the same widgets, pager, table and
export) with user and account matched exactly, and above the table what the
matching jobs add up to: counts by outcome, core-hours, wasted core-hours
(allocated core-hours no core used), core-hour weighted CPU efficiency, the
flags raised, and a per-user breakdown (an account's users). Staff also see
the top users by core-hours and by wasted core-hours.

Every figure goes through the one access rule (``data.scope_clause``):
researchers land on their own jobs, and asking for someone else's returns
nothing, so a breakdown a researcher sees holds only jobs they may open one
by one. The "to" date is inclusive: a job that ran on that day is in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, data
from dashboards.auth import Viewer
from dashboards.layout import fmt_time, html, page, query_arg, time_arg
from dashboards.pages.jobs import JobSearch
from dashboards.pages.overview import tiles
from dashboards.units import human

DEFAULT_RANGE = timedelta(days=30)
#: Rows of the per-user breakdown and of each staff top list.
TOP_USERS = 10


def _user_link(user: str | None) -> str:
    name = user or "?"
    return f'<a href="user?user={quote(name, safe="")}">{escape(name)}</a>'


def breakdown_table(frame: pl.DataFrame, caption: str) -> str:
    """Per-user rows as an HTML table (names link to the user's page)."""
    if frame.is_empty():
        return ""
    rows = "".join(
        f"<tr><td>{_user_link(r['user'])}</td><td>{r['jobs']}</td><td>{r['failed']}</td>"
        f"<td>{r['core_hours']:,.0f}</td><td>{r['wasted_core_hours']:,.0f}</td>"
        f"<td>{escape(human(r['cpu_efficiency'], '1'))}</td></tr>"
        for r in frame.iter_rows(named=True))
    return (f"<table class='hp-facts hp-breakdown'><caption style='text-align:left'>"
            f"<b>{escape(caption)}</b></caption><tr><th>User</th><th>Jobs</th><th>Failed</th>"
            "<th>Core-hours</th><th>Wasted core-hours</th><th>CPU efficiency</th></tr>"
            f"{rows}</table>")


class UserPage(JobSearch):
    """The search widgets and table, plus the summary of what they match."""

    def __init__(self, viewer: Viewer | None = None, *, user: str | None = None,
                 account: str | None = None, start: datetime | None = None,
                 end: datetime | None = None) -> None:
        viewer = viewer or auth.current()
        if not user and not account and not viewer.staff:
            user = viewer.user  # a researcher lands on their own jobs
        end = end or datetime.now(UTC)
        start = start or end - DEFAULT_RANGE
        self.summary = pn.Column(sizing_mode="stretch_width")
        self._jobs_shown = False
        super().__init__(viewer, exact=True, initial={
            "user": user, "account": account, "since": start, "until": end})

    def refresh(self) -> None:
        """The summary, then the page of jobs below it.

        On the first build the jobs wait for ``pn.state.onload`` (at once outside a
        server), so the browser draws the totals and breakdowns without waiting for
        the job query and the table; the table stays hidden until its rows are in,
        so it never says "No jobs match" for jobs it has not read yet.
        """
        self._summarise()
        if self._jobs_shown:
            super().refresh()
            return
        self.table.visible = False
        self.status.object = "Loading the jobs…"

        def jobs() -> None:
            JobSearch.refresh(self)
            self.table.visible = True
            self._jobs_shown = True

        pn.state.onload(jobs)

    def _summarise(self) -> None:
        filt = self.filters()
        with data.connection() as conn:
            totals, everyone = data.summary_and_breakdown(conn, filt, self.viewer)
            flags = data.flag_counts(conn, filt, self.viewer)
        per_user = everyone.head(TOP_USERS)  # most core-hours first
        wasters = (everyone.sort(["wasted_core_hours", "user"], descending=[True, False])
                   .head(TOP_USERS) if self.viewer.staff and everyone.height > 1 else None)
        self.summary[:] = self._summary(filt, totals, flags, per_user, wasters)

    def _summary(self, filt: data.JobFilter, totals: dict, flags: list[tuple[str, int]],
                 per_user: pl.DataFrame, wasters: pl.DataFrame | None) -> list:
        who = " / ".join(x for x in (filt.user and f"user {filt.user}",
                                     filt.account and f"account {filt.account}") if x)
        who = who or ("everyone's jobs" if self.viewer.staff else "your jobs")
        since = fmt_time(filt.since) if filt.since else "the first job"
        until = fmt_time(filt.until) if filt.until else "now"
        flag_text = ", ".join(f"{name} ({n})" for name, n in flags) or "none"
        search = "jobs?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in
                                    (("user", filt.user), ("account", filt.account)) if v)
        heading = html(
            f"<h2 style='margin:0'>{escape(who)}</h2>"
            f"<p class='hp-note'>Jobs that ran between {escape(since)} and {escape(until)}. "
            f"Flags: {escape(flag_text)}. <a href='{escape(search)}'>Search these jobs</a></p>")
        out = [heading, tiles([
            (str(totals["jobs"]), "jobs"), (str(totals["completed"]), "completed"),
            (str(totals["failed"]), "failed"),
            (f"{float(totals['core_hours'] or 0):,.0f}", "core-hours"),
            (f"{float(totals['wasted_core_hours'] or 0):,.0f}", "wasted core-hours"),
            (human(totals["cpu_efficiency"], "1"), "CPU efficiency (core-hour weighted)"),
        ])]
        if per_user.height > 1 or filt.account:
            title = ("Top users by core-hours" if self.viewer.staff and not filt.account
                     else "Per user")
            tables = [breakdown_table(per_user, title)]
            if wasters is not None:
                tables.append(breakdown_table(wasters, "Top wasted core-hours"))
            out.append(html("<div style='display:flex;gap:28px;flex-wrap:wrap'>"
                            + "".join(f"<div style='flex:1;min-width:420px'>{t}</div>"
                                      for t in tables) + "</div>"))
        return out

    def view(self):
        return page(main=[pn.Column(self.summary, self.results(), sizing_mode="stretch_width")],
                    sidebar=[pn.pane.Markdown("### Users and accounts"), *self.sidebar()],
                    active="user", viewer=self.viewer)


def _day_or_time(name: str, fallback: str) -> datetime | None:
    return time_arg(name) or time_arg(fallback)


if __name__.startswith("bokeh"):
    UserPage(auth.current(), user=query_arg("user"), account=query_arg("account"),
             start=_day_or_time("start", "since"), end=_day_or_time("end", "until")
             ).view().servable(title="User · hpcperfstats")
