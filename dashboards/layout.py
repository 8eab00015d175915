"""The frame every page shares: template, title, navigation, URL arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import panel as pn
from panel.theme import Fast as _PanelFast

from dashboards import auth
from dashboards.auth import Viewer
from hpcperfstats.report.presentation import printable  # the one rule; pages import it here

TITLE = "hpcperfstats"
ACCENT = "#1f5f8b"

# Navigation entries: (label, relative URL). Relative, so the site also
# works behind a proxy that mounts it under a path prefix.
NAV: list[tuple[str, str]] = [
    ("Overview", "overview"), ("Jobs", "jobs"), ("Users", "user"), ("Compare", "compare"),
    ("Applications", "applications"),
]

_NAV_CSS = """
.hp-nav a { color: white; text-decoration: none; margin-right: 1.4em; font-size: 1.05em;
            padding: 4px 2px; border-bottom: 2px solid transparent; }
.hp-nav a:hover, .hp-nav a.active { border-bottom-color: white; }
"""

CHIP_CSS = (".hp-chip{display:inline-block;background:#fdf1ef;color:#922b21;border-radius:9px;"
            "padding:0 7px;margin:1px 2px;font-size:12px}")

CSS = CHIP_CSS + """
table.hp-facts { border-collapse: collapse; width: 100%; font-size: 14px; }
table.hp-facts th { text-align: left; color: #555; font-weight: 600; padding: 4px 14px 4px 0;
                    white-space: nowrap; vertical-align: top; }
table.hp-facts td { padding: 4px 0; }
table.hp-facts tr + tr { border-top: 1px solid #eee; }
.hp-reason { color: #a05a00; }
.hp-note { color: #666; font-size: 13px; }
.hp-value { font-weight: 600; }
.hp-message { font-size: 18px; padding: 24px; background: #fff6e5; border-left: 4px solid #e67e22; }
.hp-bar { display: inline-block; width: 140px; height: 10px; background: #e8edf1;
          border-radius: 5px; margin-right: 8px; vertical-align: middle; overflow: hidden; }
.hp-bar > span { display: block; height: 100%; border-radius: 5px; }
.hp-flag { border-left: 4px solid #c0392b; background: #fdf1ef; padding: 8px 12px; margin: 6px 0; }
.hp-flag b { color: #922b21; }
.hp-tiles { display: flex; gap: 14px; flex-wrap: wrap; }
.hp-tile { background: #f4f7fa; border-radius: 6px; padding: 10px 16px; min-width: 130px; }
.hp-tile .n { font-size: 26px; font-weight: 700; color: #1f5f8b; }
.hp-tile .l { color: #555; font-size: 13px; }
.hp-verdict .hp-sentence { font-size: 20px; font-weight: 600; margin: 6px 0 10px; }
.hp-banner { font-size: 17px; font-weight: 600; padding: 10px 14px; border-radius: 4px;
             margin-bottom: 8px; color: white; }
.hp-banner-bad { background: #c0392b; }
.hp-banner-warn { background: #d35400; }
.hp-banner-info { background: #1f5f8b; }
.hp-ok { color: #1e8449; font-weight: 600; }
pre.hp-sbatch { background: #f4f7fa; border-left: 4px solid #1f5f8b; padding: 8px 12px;
                font-size: 14px; white-space: pre-wrap; }
.hp-good { color: #1e8449; }
.hp-bad { color: #c0392b; }
.hp-neutral { color: #1f2d3a; }
.hp-scroll { max-height: 360px; overflow-y: auto; }
table.hp-nodes td { padding: 3px 12px 3px 0; white-space: nowrap; }
table.hp-nodes th { font-size: 13px; }
tr.hp-idle-row td { background: #fdf1ef; }
.hp-idle { color: #c0392b; font-weight: 700; }
td.hp-best { background: #e9f7ef; color: #1e8449; font-weight: 600; }
td.hp-worst { background: #fdf1ef; color: #c0392b; font-weight: 600; }
td.hp-diff { background: #fef9e7; font-weight: 600; }
.hp-footer { color: #666; font-size: 12px; padding: 6px 10px; border-top: 1px solid #ddd; }
"""


class Fast(_PanelFast):
    """Panel's Fast design without the web font it loads from a public CDN.

    HPC sites often run the dashboards on networks without internet access,
    where that request fails in every browser (and elsewhere it tells a third
    party who looks at which job). The class keeps Panel's name on purpose:
    Panel locates the design's bundled files by the lower-cased class name.
    """

    _resources = {**_PanelFast._resources, "font": {}}


def chips(flags: str | None) -> str:
    """Flag names (``a, b``) as readable, escaped chips (``low cpu efficiency``)."""
    names = [f.strip() for f in (flags or "").split(",") if f.strip()]
    return "".join(f'<span class="hp-chip">{escape(n.replace("_", " "))}</span>' for n in names)


def nav(active: str | None = None) -> pn.pane.HTML:
    entries = [*NAV, *([("Sign out", "logout")] if auth.mode() in ("basic", "oauth") else [])]
    links = "".join(
        f'<a href="{escape(url)}"{" class=active" if url == active else ""}>{escape(label)}</a>'
        for label, url in entries
    )
    return pn.pane.HTML(
        f'<nav class="hp-nav">{links}</nav>', stylesheets=[_NAV_CSS], margin=(12, 10, 0, 10)
    )


#: the header's white text would hide the chosen cluster's name
_SELECT_CSS = "select { color: #1f2d3a !important; background: white !important; }"

#: the selector's script: remember the choice (the cookie keeps it across the
#: site's links) and reload the page on that cluster
_ON_CHANGE = ("document.cookie = '" + auth.CLUSTER_COOKIE + "=' + encodeURIComponent(cb_obj.value)"
              " + '; path=/; SameSite=Lax';"
              " const u = new URL(window.location.href);"
              " u.searchParams.set('cluster', cb_obj.value);"
              " window.location.href = u.toString();")


def cluster_selector(viewer: Viewer) -> pn.widgets.Select:
    """The cluster every query of the page reads (``Viewer.cluster``): a select of the
    clusters the deployment serves (``hpcperfstats.clusters``)."""
    from dashboards.data import viewer_cluster
    from hpcperfstats.clusters import cluster_names

    current = viewer_cluster(viewer)
    names = cluster_names()
    if current not in names:  # a name from a stale link: shown, so the empty page says why
        names = [*names, current]
    select = pn.widgets.Select(name="Cluster", options=names, value=current, width=170,
                               css_classes=["hp-cluster"], margin=(4, 10, 0, 10),
                               stylesheets=[_SELECT_CSS])
    select.jscallback(value=_ON_CHANGE)
    return select


def html(body: str, **kwargs: Any) -> pn.pane.HTML:
    """An HTML pane with the site's styles. ``body`` must already be escaped."""
    return pn.pane.HTML(body, stylesheets=[CSS], sizing_mode="stretch_width", **kwargs)


def message(text: str, link: tuple[str, str] = ("jobs", "Back to the job list")) -> pn.pane.HTML:
    return html(f'<div class="hp-message">{escape(printable(text))} '
                f'<a href="{escape(link[0])}">{escape(link[1])}</a></div>')


def footer(viewer: Viewer) -> pn.pane.HTML:
    """Who the page was built for; says plainly when access control is off."""
    if auth.mode() == "none":
        text = ("Access control is off (HPCPERF_AUTH=none): everyone is staff and sees "
                "every job. Serve this only on loopback.")
    else:
        scope = "all jobs" if viewer.staff else (
            "your jobs and your accounts' jobs" if viewer.share_accounts else "your jobs")
        text = f"Signed in as {viewer.label}; you see {scope}."
    return html(f'<div class="hp-footer">{escape(text)}</div>')


def invalid_args() -> list[str]:
    """Names of URL arguments whose values no stored text can match (NUL, bad UTF-8)."""
    from dashboards.data import valid_text

    names = []
    for name, values in (pn.state.session_args or {}).items():
        texts = [v.decode("utf-8", errors="replace") for v in values]
        if not all(valid_text(t) for t in texts):
            names.append(name)
    return sorted(names)


def invalid_note() -> list[pn.pane.HTML]:
    """A note saying which arguments were refused (empty when all were fine)."""
    names = invalid_args()
    if not names:
        return []
    listed = ", ".join(printable(n) for n in names)
    return [html(f'<div class="hp-message">The address holds characters that no job id, '
                 f"name or date contains (in: {escape(listed)}); nothing matches them.</div>")]


def page(main: list[Any], sidebar: list[Any] | None = None, active: str | None = None,
         viewer: Viewer | None = None):
    """A FastListTemplate with the site's title, colours, navigation and footer."""
    viewer = viewer or auth.current()
    return pn.template.FastListTemplate(
        title=TITLE,
        header=[nav(active), cluster_selector(viewer)],
        main=[*invalid_note(), *main, footer(viewer)],
        sidebar=sidebar or [],
        design=Fast,
        font="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
        accent_base_color=ACCENT,
        header_background=ACCENT,
        theme_toggle=False,
        main_layout=None,
        sidebar_width=260,
    )


def query_arg(name: str, max_length: int = 200) -> str | None:
    """One URL query value as text, or None.

    Read from the raw request so ``?jobid=007`` stays ``'007'``; Panel's
    parsed ``location.query_params`` turns numbers into ints, which is only
    the fallback here and normalised to ``str``.
    """
    raw = pn.state.session_args.get(name)
    if raw:
        value = raw[0].decode("utf-8", errors="replace")
    else:
        parsed = pn.state.location.query_params.get(name) if pn.state.location else None
        if parsed is None:
            return None
        value = str(parsed)
    value = value.strip()[:max_length]
    return value or None


def parse_time(value: str | None, *, to_date: bool = False) -> datetime | None:
    """A date or ISO time as an aware UTC datetime (None if absent or bad).

    ``to_date``: the value ends a range, and a bare date (``2026-03-31``) means
    the whole of that day, so the end is the next midnight: a "to" date is
    inclusive, as on the search page.
    """
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    if to_date and len(text) == 10:  # YYYY-MM-DD: no time given
        parsed += timedelta(days=1)
    return parsed


def time_arg(name: str, *, to_date: bool = False) -> datetime | None:
    """A date or ISO time URL argument as an aware UTC datetime (``parse_time``)."""
    return parse_time(query_arg(name, 40), to_date=to_date)


def fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"
