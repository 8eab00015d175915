"""The job page's "What ran" section: applications, processes, command and job script.

Everything comes from tables the pipeline already fills: ``job_applications``
(the processes of the job's ``proc``/``procexe`` rows, named by the
application rules), ``job_data`` (``submit_line``) and ``job_scripts`` (where
the site stores job scripts: ``hpcperf-sacct-dump --scripts``). Researchers see
their applications and the process names; the full paths of executables no
rule names are for staff, who write the rules (``app_rules.yaml``). A job script
is shown to its owner and staff only (``data.may_read_script``), as text.
"""

from __future__ import annotations

from html import escape
from typing import Any

import polars as pl

from dashboards.auth import Viewer
from dashboards.data import may_read_script
from dashboards.layout import html
from dashboards.pages.applications import applications_view
from hpcperfstats.report.presentation import printable, script_entry


def processes(apps: pl.DataFrame) -> pl.DataFrame:
    """Process names (the executable's file name, or the ``proc`` name) with how many
    processes ran under each, their CPU time and share of the job, largest first."""
    if apps.is_empty():
        return pl.DataFrame(schema={"name": pl.Utf8, "processes": pl.Int64,
                                    "cpu_s": pl.Float64, "share": pl.Float64})
    name = pl.col("executable").str.split("/").list.last()
    return (apps.group_by(name.alias("name"))
            .agg(pl.col("processes").sum(), pl.col("cpu_s").sum(), pl.col("share").sum())
            .sort(["share", "name"], descending=[True, False], nulls_last=True))


def _share(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _note(cls: str, text: str) -> str:
    return f'<p class="hp-note {cls}">{escape(text)}</p>'


def script_view(job: dict[str, Any], script: dict[str, Any] | None, viewer: Viewer) -> str:
    """The job script as text (every character escaped, control characters but newline
    and tab shown as ``\\xNN``), or why there is none to show (``script_entry``: the
    same words as ``hpcperf job`` and the data API)."""
    entry = script_entry(script, may_read_script(job, viewer))
    if entry["status"] != "shown":
        return _note(f"hp-script-{entry['status'].replace('_', '-')}", entry["note"])
    note = _note("hp-script-truncated", entry["note"]) if entry["note"] else ""
    return (f"<p><b>Job script</b></p>{note}<pre class='hp-script'>"
            f"{escape(printable(entry['script'], keep=chr(10) + chr(9)))}</pre>")


def what_ran_view(job: dict[str, Any], apps: pl.DataFrame, viewer: Viewer,
                  script: dict[str, Any] | None = None):
    """Applications (name, category, share), the processes seen, for staff the
    executables no rule names, the submit command and the job script (``script``:
    ``data.job_script``'s row)."""
    procs = processes(apps)
    parts = []
    if procs.height:
        rows = "".join(
            f"<tr><td>{escape(printable(r['name']))}</td><td>{r['processes']}</td>"
            f"<td>{_share(r['share'])}</td></tr>"
            for r in procs.iter_rows(named=True))
        parts.append("<p><b>Processes seen</b></p><table class='hp-facts hp-procs'><tr>"
                     "<th>Process</th><th>Processes</th><th>Share</th></tr>"
                     f"{rows}</table>")
    unknown = apps.filter(~pl.col("known")) if apps.height else apps
    if viewer.staff and unknown.height:
        paths = "".join(f"<li><code>{escape(printable(e))}</code></li>"
                        for e in sorted(set(unknown["executable"].to_list())))
        parts.append("<p><b>Executables no rule names</b> <span class='hp-note'>(staff: add "
                     f"a rule to app_rules.yaml)</span></p><ul class='hp-unknown'>{paths}</ul>")
    line = job.get("submit_line")
    if line:
        parts.append(f"<p><b>Submitted with</b></p><pre class='hp-submit'>"
                     f"{escape(printable(str(line)))}</pre>")
    parts.append(script_view(job, script, viewer))
    return [applications_view(apps), html("".join(parts))]
