"""The job page's "What ran" section: applications, processes, command and job script.

Everything comes from tables the pipeline already fills: ``job_applications``
(the processes of the job's ``proc``/``procexe`` rows, named by the
application rules) and ``job_data`` (``submit_line``; the job script only
where the site's accounting dump carries one). Researchers see their
applications and the process names; the full paths of executables no rule
names are for staff, who write the rules (``app_rules.yaml``).
"""

from __future__ import annotations

from html import escape
from typing import Any

import polars as pl

from dashboards.auth import Viewer
from dashboards.layout import html, printable
from dashboards.pages.applications import applications_view

#: what the section says where the site keeps no job scripts
NO_SCRIPT = ("Job script: not stored. This site's accounting dump does not carry job "
             "scripts (Slurm keeps them with AccountingStoreFlags=job_script; "
             "sacct --batch-script prints one).")


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


def _script(job: dict[str, Any]) -> str:
    script = job.get("batch_script")
    if script:
        return (f"<p><b>Job script</b></p><pre class='hp-script'>"
                f"{escape(printable(str(script)))}</pre>")
    return f'<p class="hp-note hp-script-missing">{escape(NO_SCRIPT)}</p>'


def what_ran_view(job: dict[str, Any], apps: pl.DataFrame, viewer: Viewer):
    """Applications (name, category, share), the processes seen, for staff the
    executables no rule names, the submit command and the job script."""
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
    parts.append(_script(job))
    return [applications_view(apps), html("".join(parts))]
