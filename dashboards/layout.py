"""The frame every page shares: template, title, navigation, URL arguments."""

from __future__ import annotations

from html import escape
from typing import Any

import panel as pn
from panel.theme import Fast as _PanelFast

TITLE = "hpcperfstats"
ACCENT = "#1f5f8b"

# Navigation entries: (label, relative URL). Relative, so the site also
# works behind a proxy that mounts it under a path prefix.
NAV: list[tuple[str, str]] = [("Jobs", "jobs")]

_NAV_CSS = """
.hp-nav a { color: white; text-decoration: none; margin-right: 1.4em; font-size: 1.05em;
            padding: 4px 2px; border-bottom: 2px solid transparent; }
.hp-nav a:hover, .hp-nav a.active { border-bottom-color: white; }
"""


class Fast(_PanelFast):
    """Panel's Fast design without the web font it loads from a public CDN.

    HPC sites often run the dashboards on networks without internet access,
    where that request fails in every browser (and elsewhere it tells a third
    party who looks at which job). The class keeps Panel's name on purpose:
    Panel locates the design's bundled files by the lower-cased class name.
    """

    _resources = {**_PanelFast._resources, "font": {}}


def nav(active: str | None = None) -> pn.pane.HTML:
    links = "".join(
        f'<a href="{escape(url)}"{" class=active" if url == active else ""}>{escape(label)}</a>'
        for label, url in NAV
    )
    return pn.pane.HTML(
        f'<nav class="hp-nav">{links}</nav>', stylesheets=[_NAV_CSS], margin=(12, 10, 0, 10)
    )


def page(main: list[Any], sidebar: list[Any] | None = None, active: str | None = None):
    """A FastListTemplate with the site's title, colours and navigation."""
    return pn.template.FastListTemplate(
        title=TITLE,
        header=[nav(active)],
        main=main,
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
