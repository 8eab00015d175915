"""``/job?jobid=...``: one job's accounting, metrics, flags, coverage and time series.

Numbers are shown next to what the job was allocated (the Princeton
``jobstats`` habit), so a researcher sees at a glance whether the cores or
memory they asked for were used. A job the viewer may not see is answered
exactly like one that does not exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from html import escape
from typing import Any
from urllib.parse import quote

import panel as pn
import polars as pl

from dashboards import auth, data, long_range, timeseries
from dashboards.advice import advice
from dashboards.auth import Viewer
from dashboards.layout import fmt_time, html, message, page, query_arg
from dashboards.pages.job_performance import footprint_view, roofline_view
from dashboards.pages.job_ran import what_ran_view
from dashboards.plots import WIDE_HOSTS, heatmap, raw_event, series_plot, stack
from dashboards.units import duration, human, metric_text
from hpcperfstats.flags.rules import rule_metrics
from hpcperfstats.hostdata.series import ALL_SERIES, CGROUP_SERIES, SERIES
from hpcperfstats.jobs.footprint import FOOTPRINT_METRICS
from hpcperfstats.jobs.metrics import IDLE_SHARE, METRICS
from hpcperfstats.jobs.roofline import node_peaks
from hpcperfstats.jobs.series import first_rate
from hpcperfstats.report import presentation as pr
from hpcperfstats.report.presentation import coverage_text, source_note

log = logging.getLogger(__name__)

#: Named series drawn on the job page, in order (totals are references, not plots).
JOB_SERIES = [*timeseries.PLOTTED_SERIES,
              *sorted(n for n in SERIES if n not in timeseries.PLOTTED_SERIES
                      and n not in ("cpu_total", "mem_total"))]


def _text(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


def _rows(pairs: list[tuple[str, str]]) -> str:
    """An HTML table of (label, already-escaped value)."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="hp-facts">{body}</table>'


def _host_links(job: dict[str, Any], viewer: Viewer) -> str:
    hosts = job.get("hosts") or []
    if not hosts:
        return "—"
    if not viewer.staff:
        return escape(", ".join(hosts))
    start, end = job.get("start_time"), job.get("end_time")
    span = "".join(
        f"&{k}={quote(v.isoformat(), safe='')}" for k, v in (("start", start), ("end", end)) if v
    )
    return ", ".join(
        f'<a href="host?host={quote(h, safe="")}{escape(span)}">{escape(h)}</a>' for h in hosts
    )


def facts(job: dict[str, Any], viewer: Viewer) -> pn.pane.HTML:
    plain = [
        ("User", _text(job.get("username"))),
        ("Account", _text(job.get("account"))),
        ("Partition", _text(job.get("partition"))),
        ("QOS", _text(job.get("qos"))),
        ("State", _text(job.get("state"))),
        ("Exit code", "— (running)" if job.get("end_time") is None and job.get("start_time")
         else _text(job.get("exit_code"))),
        ("Submitted", fmt_time(job.get("submit_time"))),
        ("Started", fmt_time(job.get("start_time"))),
        ("Ended", fmt_time(job.get("end_time"))),
        ("Run time", duration(job.get("elapsed_s"))),
        ("Time limit", duration(job.get("timelimit_s"))),
        ("Nodes", _text(job.get("nnodes"))),
        ("Cores", _text(job.get("ncpus"))),
        ("Memory requested", human(job.get("req_mem_bytes"), "B")),
        ("GPUs", _text(job.get("ngpus"))),
        ("GPU-hours", pr.gpu_hours_text(job)),
    ]
    pairs = [(k, escape(v)) for k, v in plain] + [("Hosts", _host_links(job, viewer))]
    return html(_rows(pairs))


def cores_per_node(job: dict[str, Any]) -> float | None:
    nnodes, ncpus = job.get("nnodes"), job.get("ncpus")
    return ncpus / nnodes if nnodes and ncpus else None


def mem_per_node(job: dict[str, Any]) -> float | None:
    nnodes, mem = job.get("nnodes"), job.get("req_mem_bytes")
    return mem / nnodes if nnodes and mem else None


def allocation(metric: str, job: dict[str, Any]) -> tuple[float | None, str]:
    """What a metric is measured against, and how to say it."""
    if metric == "cpu_cores_avg" and (cores := cores_per_node(job)):
        return cores, f"of {cores:g} allocated per node"
    if metric == "mem_hwm_bytes" and (mem := mem_per_node(job)):
        return mem, f"of {human(mem, 'B')} requested per node"
    if metric in ("cpu_efficiency", "hosts_with_data"):
        return 1.0, ""
    return None, ""


#: Bar and value colours by a metric's tone (``presentation.metric_tone``).
TONE_COLOURS = {"good": "#1e8449", "bad": "#c0392b", "neutral": "#1f5f8b"}


def _bar(fraction: float, tone: str) -> str:
    shown = max(0.0, min(fraction, 1.0)) * 100
    return (f'<span class="hp-bar" title="{fraction * 100:.0f} % of allocation">'
            f'<span style="width:{shown:.0f}%;background:{TONE_COLOURS.get(tone, "#777")}">'
            "</span></span>")


def metrics_table(metrics: pl.DataFrame, job: dict[str, Any], fired: set[str],
                  provisional: bool = False) -> pn.pane.HTML:
    """Metrics by importance (CPU, memory, GPU, I/O, network, energy), each coloured
    by its direction and the flag rules' thresholds; those without a value are
    folded into one line saying why."""
    if metrics.is_empty():
        return html('<p class="hp-note">No metrics computed for this job yet.</p>')
    values = dict(zip(metrics["metric"], metrics["value"], strict=True))
    rows, missing = [], []
    ordered = sorted(metrics.iter_rows(named=True), key=lambda r: pr.metric_rank(r["metric"]))
    for row in ordered:
        spec = METRICS.get(row["metric"])
        label = spec.label if spec else row["metric"]
        if row["value"] is None:
            missing.append((label, row["reason"]))
            continue
        tone = pr.metric_tone(row["metric"], values, fired, spec.better if spec else "")
        limit, note = allocation(row["metric"], job)
        bar = _bar(row["value"] / limit, tone) if limit else ""
        value = escape(metric_text(row["metric"], row["value"], row["unit"]))
        shown = (f'{bar}<span class="hp-value hp-{tone}">{value}</span> '
                 f'<span class="hp-note">{escape(note)}</span>')
        why = f' title="{escape(spec.why)}"' if spec else ""
        rows.append(f"<tr><th{why}>{escape(label)}</th><td>{shown}</td></tr>")
    head = ('<p class="hp-note">Provisional: computed now from the samples so far, by '
            "the same formulas as for finished jobs.</p>" if provisional else "")
    folded = (f'<p class="hp-reason hp-missing">{escape(pr.missing_line(missing))}</p>'
              if missing else "")
    return html(f'{head}<table class="hp-facts">{"".join(rows)}</table>{folded}')


def ordered_flags(flags: pl.DataFrame, metric_of: dict[str, str]) -> list[dict[str, Any]]:
    """The job's flags in the order ``hpcperf job`` lists them (risks first)."""
    rows = list(flags.iter_rows(named=True)) if not flags.is_empty() else []
    return pr.order_flags(rows, metric_of)


def verdict_view(job: dict[str, Any], metrics: pl.DataFrame, fired: list[dict[str, Any]],
                 provisional: bool = False) -> pn.pane.HTML:
    """The verdict first: the state banner, the one sentence, the flags in plain words
    with their advice and the ``#SBATCH`` lines to change: the words of ``hpcperf job``."""
    values = dict(zip(metrics["metric"], metrics["value"], strict=True))
    reasons = dict(zip(metrics["metric"], metrics["reason"], strict=True))
    parts = []
    banner = pr.state_banner("RUNNING" if provisional else job.get("state"),
                             job.get("exit_code"))
    if banner:
        parts.append(f'<div class="hp-banner hp-banner-{banner[0]}">{escape(banner[1])}</div>')
    sentence = pr.verdict(job, values, provisional, reasons.get("cpu_efficiency"))
    parts.append(f'<p class="hp-sentence">{escape(sentence)}</p>')
    if fired:
        items = []
        for row in fired:
            flag = str(row.get("flag") or "")
            tip = advice(flag, row.get("advice"))
            tip_html = f'<br><span class="hp-note">What to do: {escape(tip)}</span>' if tip else ""
            items.append(f'<div class="hp-flag"><b>{escape(flag.replace("_", " "))}</b>: '
                         f"{escape(_text(row.get('message')))}{tip_html}</div>")
        parts.append(f"<p><b>{escape(pr.FLAGS_HEADING)}</b></p>{''.join(items)}")
    else:
        parts.append(f'<p class="hp-ok">{escape(pr.NO_FLAGS)}</p>')
    lines = pr.sbatch_advice(job, values, fired, pr.run_seconds(job))
    if lines:
        text = "\n".join(pr.sbatch_text(lines))
        parts.append(f"<p><b>{escape(pr.SBATCH_HEADING)}</b></p>"
                     f'<pre class="hp-sbatch">{escape(text)}</pre>')
    return html(f'<div class="hp-verdict">{"".join(parts)}</div>')


def peer_view(job: dict[str, Any], values: dict[str, float | None],
              peers: dict[str, dict[str, Any] | None]) -> pn.pane.HTML:
    """Where the job stands among its partition's jobs of the last days (percentiles),
    or why that is withheld (the pool is too small to hide any one person's job)."""
    where = (f"jobs in partition {job.get('partition') or '—'} that ended in the "
             f"{data.PEER_DAYS} days before this one")
    if not peers:
        return html(f'<p class="hp-note">No value to compare with the {escape(where)}.</p>')
    rows = []
    for metric, peer in peers.items():
        spec = METRICS[metric]
        mine = metric_text(metric, values.get(metric), spec.unit)
        if peer is None:
            shown = (f'<span class="hp-note">withheld: fewer than {data.MIN_POOL_JOBS} jobs of '
                     f"{data.MIN_POOL_USERS} users to compare with</span>")
        else:
            median = metric_text(metric, peer["median"], spec.unit)
            shown = (f"this job's {escape(mine)} is above "
                     f'<b>{float(peer["below"]):.0%}</b> of {peer["jobs"]} jobs of '
                     f'{peer["users"]} users <span class="hp-note">(median '
                     f"{escape(median)})</span>")
        rows.append(f"<tr><th>{escape(spec.label)}</th><td>{shown}</td></tr>")
    return html(f'<p class="hp-note">Compared with the {escape(where)}.</p>'
                f'<table class="hp-facts hp-peers">{"".join(rows)}</table>')


def _gaps(gaps: Any) -> str:
    """``[[from, to], ...]`` as ``10:20–10:30`` (UTC), or none."""
    if isinstance(gaps, str):
        try:
            gaps = json.loads(gaps)
        except ValueError:
            return gaps
    out = []
    for gap in gaps or []:
        try:
            out.append("–".join(str(t)[11:16] if len(str(t)) >= 16 else str(t) for t in gap))
        except TypeError:
            out.append(str(gap))
    return ", ".join(out) or "none"


def _coverage_row(row: dict[str, Any]) -> str:
    present, expected = row.get("present"), row.get("expected")
    cells = [
        _text(row.get("host")), duration(row.get("interval_s")),
        coverage_text(present, expected, row.get("extra") or 0) if present is not None
        else f"{_text(present)} of {_text(expected)}", human(row.get("fraction"), "1"),
        _gaps(row.get("gaps")),
    ]
    return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def coverage_view(coverage: pl.DataFrame, sources: dict[str, str]) -> pn.pane.HTML:
    parts = []
    if coverage.is_empty():
        parts.append('<p class="hp-note">No coverage recorded for this job yet.</p>')
    else:
        frac_col = next((c for c in coverage.columns if "fraction" in c or "coverage" in c), None)
        if frac_col:
            mean = coverage[frac_col].mean()
            low = coverage.filter(pl.col(frac_col) < 0.9)
            parts.append(f"<p>Samples received: <b>{escape(human(mean, '1'))}</b> of those "
                         f"expected, averaged over {coverage.height} host(s).</p>")
            if not low.is_empty() and "host" in low.columns:
                hosts = ", ".join(f"{h} ({human(f, '1')})"
                                  for h, f in low.select("host", frac_col).iter_rows())
                parts.append(f'<p class="hp-reason">Hosts with gaps: {escape(hosts)}</p>')
        rows = "".join(_coverage_row(r) for r in coverage.head(200).iter_rows(named=True))
        parts.append('<table class="hp-facts"><tr><th>Host</th><th>Interval</th>'
                     "<th>Samples</th><th>Coverage</th><th>Gaps</th></tr>"
                     f"{rows}</table>")
    if sources:
        text = ", ".join(f"{METRICS[m].label if m in METRICS else m}: {s}"
                         for m, s in sorted(sources.items()))
        parts.append(f"<p>Source of each metric: {escape(text)}</p>")
    else:
        parts.append('<p class="hp-note">CPU and memory source: node-wide counters '
                     "(/proc/stat, /proc/meminfo) of the job's hosts.</p>")
    parts.append('<p class="hp-note">"cgroup": the job\'s own Slurm cgroup, right on shared '
                 'nodes; "node": the whole node\'s counters; "node (shared)": '
                 f"{escape(source_note('node (shared)'))}.</p>")
    return html("".join(parts))


def _xlabel(index: int, count: int) -> str:
    return "time (UTC)" if index == count - 1 else ""


#: Which tab a series is drawn in; series not listed go to "Other".
TABS: dict[str, str] = {
    "cg_cpu": "CPU", "cpu_busy": "CPU", "flops": "CPU", "cycles": "CPU",
    "cg_mem": "Memory", "cg_mem_peak": "Memory", "mem_used": "Memory", "mem_bw": "Memory",
    "net_bw": "Network", "ib_bw": "Network", "ib_pkts": "Network",
    "cg_io_bw": "Storage", "block_bw": "Storage", "lustre_read_bw": "Storage",
    "lustre_write_bw": "Storage", "lustre_md_ops": "Storage",
    "gpu_util": "GPU", "gpu_mem": "GPU",
    "cpu_power": "Energy", "gpu_power": "Energy",
}
TAB_ORDER = ["CPU", "Memory", "Network", "Storage", "GPU", "Energy", "Other"]
#: Buckets per host for wide jobs: a heatmap column per ~20 minutes of 48 hours.
WIDE_POINTS = 144


def _points(job: dict[str, Any]) -> int:
    wide = len(job.get("hosts") or []) > WIDE_HOSTS
    return WIDE_POINTS if wide else timeseries.MAX_POINTS


def open_tab(fired: list[dict[str, Any]], metric_of: dict[str, str]) -> str | None:
    """The plot tab of the first flag (memory flag -> Memory): the page opens there."""
    for flag in fired:
        spec = METRICS.get(metric_of.get(str(flag.get("flag")), ""))
        if spec and spec.series in TABS:
            return TABS[spec.series]
    return None


def series_plots(job: dict[str, Any], named: pl.DataFrame, extra: pl.DataFrame,
                 first: str | None = None, gpus: pl.DataFrame | None = None):
    """Every collected type, one tab per kind (CPU, memory, network, storage,
    GPU, energy, other types): the job's own cgroup series where reported,
    the node-wide series, then types no named series covers, per event; in the
    GPU tab also each GPU's utilisation, memory and power (``gpus``:
    ``timeseries.gpu_devices``), so one idle GPU among busy ones shows.

    Tabs render when first opened, so a wide job's page does not build every
    plot before it shows the first; ``first`` names the tab to open with.
    """
    gpus = gpus if gpus is not None else pl.DataFrame(schema=timeseries.GPU_SCHEMA)
    if named.is_empty() and extra.is_empty() and gpus.is_empty():
        return html('<p class="hp-note">No time series recorded on this job\'s hosts '
                    "during its run time.</p>")
    # per tab, the plots to build: only the open tab's are built with the page,
    # the others on their first click (a wide job's plots are most of its build time)
    groups: dict[str, list[Callable[[], list[Any]]]] = {}
    present = set(named["series"].unique().to_list()) if not named.is_empty() else set()
    references = {"cores": cores_per_node(job), "B": mem_per_node(job)}
    wide = (named["host"].n_unique() if not named.is_empty() else 0) > WIDE_HOSTS
    # a wide job's per-node view draws this series' heatmap already: not twice
    in_node_view = node_heatmap_series(named) if wide else None
    for name in (n for n in [*CGROUP_SERIES, *JOB_SERIES] if n in present):
        spec = ALL_SERIES[name]
        tab = TABS.get(name, "Other")
        # the allocation lines are the node's cores and memory: not a GPU's memory
        groups.setdefault(tab, []).append(partial(
            series_plot, named.filter(pl.col("series") == name), spec.label, spec.unit,
            reference=references.get(spec.unit) if tab != "GPU" else None,
            per_host=name != in_node_view))
    for event, (label, unit) in timeseries.GPU_EVENTS.items():
        part = gpus.filter(pl.col("event") == event)
        if not part.is_empty():
            groups.setdefault("GPU", []).append(partial(series_plot, part, label, unit))
    for (type_, event, unit), part in extra.group_by("type", "event", "unit",
                                                     maintain_order=True):
        groups.setdefault("Other", []).append(partial(_raw_event_plot, part, type_, event, unit))
    note = ("Wide job: the line is the mean over hosts, the band its min-max; the heatmap "
            "shows every host." if wide else "One line per host; dotted: the job-wide mean.")
    caption = html(f'<p class="hp-note">{note} Dashed: what was allocated per node. '
                   "Hover for values, drag to pan, scroll to zoom; time axes in a tab move "
                   f"together. Long runs are averaged into at most {_points(job)} points "
                   "per host.</p>")
    names = [t for t in TAB_ORDER if t in groups]
    tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width",
                   active=names.index(first) if first in names else 0)
    for tab in names:
        tabs.append((tab, _lazy_tab(groups[tab])))
    return pn.Column(caption, tabs, sizing_mode="stretch_width")


def _raw_event_plot(part: pl.DataFrame, type_: str, event: str, unit: str | None
                    ) -> list[Any]:
    return series_plot(*raw_event(part, type_, event, unit))


def _lazy_tab(builders: list[Callable[[], list[Any]]]) -> pn.param.ParamFunction:
    """One tab's plots, one above the other, time axes linked: built when the tab
    is first shown (``lazy``; the tabs are ``dynamic``), not with the page."""

    def plots() -> pn.pane.Bokeh:
        return stack([fig for build in builders for fig in build()])

    return pn.param.ParamFunction(plots, lazy=True, sizing_mode="stretch_width")


#: What the per-node view summarises: the job's own cgroup where reported, else the node.
NODE_SERIES = (("cg_cpu", "cpu_busy"), ("cg_mem", "mem_used"))


def node_series(named: pl.DataFrame) -> list[str]:
    """The series the per-node view summarises (of :data:`NODE_SERIES`, those present)."""
    present = set(named["series"].unique().to_list()) if not named.is_empty() else set()
    chosen = [next((n for n in pair if n in present), None) for pair in NODE_SERIES]
    return [n for n in chosen if n]


def node_heatmap_series(named: pl.DataFrame) -> str | None:
    """The series of the per-node view's heatmap (busy cores), if it draws one."""
    chosen = node_series(named)
    return chosen[0] if chosen and ALL_SERIES[chosen[0]].unit in ("cores", "s/s") else None


def node_view(job: dict[str, Any], named: pl.DataFrame):
    """Every node of the job at once: a heatmap of busy cores (hosts by time) and
    min/mean/max per node, idle nodes marked, so two idle nodes of a four-node
    job stand out instead of hiding under identical lines."""
    chosen = node_series(named)
    if not chosen:
        return html('<p class="hp-note">No per-node data for this job.</p>')
    stats = timeseries.per_host_stats(named.filter(pl.col("series").is_in(chosen)))
    cpn = cores_per_node(job) or 0.0
    heads, cells = ["Node"], {}
    for name in chosen:
        spec = ALL_SERIES[name]
        heads += [f"{spec.label}: min", "mean", "max"]
    heads.append("")
    for host in sorted(stats["host"].unique().to_list()):
        row, idle = [escape(host)], False
        for name in chosen:
            unit = ALL_SERIES[name].unit
            part = stats.filter((pl.col("host") == host) & (pl.col("series") == name))
            if part.is_empty():
                row += ["—"] * 3
                continue
            got = part.row(0, named=True)
            mean = got["mean"]
            row += [escape(human(got[k], unit)) for k in ("min", "mean", "max")]
            if unit in ("cores", "s/s") and cpn and mean < IDLE_SHARE * cpn:
                idle = True
        row.append('<span class="hp-idle">idle</span>' if idle else "")
        cells[host] = (idle, row)
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "".join(
        f'<tr class="{"hp-idle-row" if idle else ""}" data-host="{escape(host)}">'
        + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for host, (idle, row) in cells.items())
    idle_hosts = [h for h, (idle, _) in cells.items() if idle]
    note = (f"{len(idle_hosts)} of {len(cells)} node(s) idle: {', '.join(idle_hosts)}."
            if idle_hosts else f"All {len(cells)} node(s) did work.")
    table = html(f'<p class="hp-note">{escape(note)} Idle: under {IDLE_SHARE:.0%} of the '
                 "job's cores on the node busy on average.</p>"
                 f'<div class="hp-scroll"><table class="hp-facts hp-nodes"><tr>{head}</tr>'
                 f"{body}</table></div>")
    cpu = node_heatmap_series(named)
    if cpu is None or len(cells) < 2:
        return table
    part = named.filter(pl.col("series") == cpu)
    plot = pn.pane.Bokeh(heatmap(part, ALL_SERIES[cpu].label, ALL_SERIES[cpu].unit),
                         sizing_mode="stretch_width")
    return pn.Column(table, plot, sizing_mode="stretch_width")


def _card(body: Any, title: str) -> pn.Card:
    return pn.Card(body, title=title, collapsible=False, sizing_mode="stretch_width")


def job_view(jobid: str | None, viewer: Viewer):
    """The whole page for one job id (or the reason there is none to show)."""
    if not jobid:
        return page([message("No job given: open one from the job list, "
                             "or add ?jobid=<id> to the address.")], viewer=viewer)
    with data.connection() as conn:
        job = data.job_record(conn, jobid, viewer)
        if job is None:
            return page([message(f"Job {jobid} not found.")], viewer=viewer)
        provisional = job.get("end_time") is None and job.get("start_time") is not None
        on = job["cluster"]  # the viewer's cluster (scope_clause): its job of this id
        metrics = (data.provisional_metrics(conn, jobid, on) if provisional
                   else data.job_metrics(conn, jobid, on))
        flags = data.job_flags(conn, jobid, on)
        apps = data.job_applications(conn, jobid, on)
        script = data.job_script(conn, job, viewer)
        values = dict(zip(metrics["metric"], metrics["value"], strict=True))
        # one pass over the partition's pools: the peer percentiles and the footprint's norms
        norms = data.peer_context(conn, job, values, viewer,
                                  tuple(dict.fromkeys([*data.PEER_METRICS, *FOOTPRINT_METRICS])))
        peers = {m: norms[m] for m in data.PEER_METRICS if m in norms}
        coverage = data.job_coverage(conn, jobid, on)
        sources = data.used_sources(conn, jobid, on)
    name = job.get("jobname") or ""
    heading = html(
        f"<h2 style='margin:0'>Job {escape(jobid)} "
        f"<span style='font-weight:400;color:#555'>{escape(name)}</span></h2>"
        f"<p class='hp-note'><a href='compare?jobids={quote(jobid, safe='')}'>Compare with "
        "other jobs</a></p>"
    )
    metric_of = rule_metrics()
    fired = ordered_flags(flags, metric_of)
    verdict = _card(verdict_view(job, metrics, fired, provisional), "Verdict")
    flagged = {metric_of[f["flag"]] for f in fired if f.get("flag") in metric_of}
    title = "Metrics so far (provisional)" if provisional else "Metrics (vs allocation)"
    top = pn.Row(_card(facts(job, viewer), "Accounting"),
                 pn.Column(_card(metrics_table(metrics, job, flagged, provisional), title),
                           _card(peer_view(job, values, peers), "Among comparable jobs"),
                           _card(pn.Column(*what_ran_view(job, apps, viewer, script),
                                           sizing_mode="stretch_width"), "What ran"),
                           _card(coverage_view(coverage, sources), "Data coverage and sources"),
                           sizing_mode="stretch_width"),
                 sizing_mode="stretch_width")
    # shown under the verdict until the plots below it arrive
    loading = html('<p class="hp-note hp-loading">Loading the per-node view and the plots…</p>')
    body = pn.Column(heading, verdict, top, loading, sizing_mode="stretch_width")

    def rest() -> None:
        """The per-node view, footprint, roofline and time series, sent once the
        browser shows the verdict (``pn.state.onload``; at once outside a server)."""
        try:
            section = plots_section(job, values, norms, fired, metric_of)
        except Exception:  # the verdict above stays; say so instead of "Loading" forever
            log.exception("job %s: the plots could not be built", jobid)
            section = [html('<p class="hp-reason">The per-node view and the plots could '
                            "not be loaded; the server log has the reason.</p>")]
        body.objects = [*body.objects[:-1], *section]

    pn.state.onload(rest)
    return page([body], viewer=viewer)


def plots_section(job: dict[str, Any], values: dict[str, float | None],
                  norms: dict[str, dict[str, Any] | None], fired: list[dict[str, Any]],
                  metric_of: dict[str, str]) -> list[pn.Card | pn.Column]:
    """The page below the verdict: its series reads and its heavy Bokeh models (the
    heatmap, footprint, roofline and the open tab's plots; 291 models for a 128-node
    job), kept out of the first document so Chromium draws the verdict without
    waiting for them."""
    jobid, on = job["jobid"], job["cluster"]
    with data.connection() as conn:
        named = timeseries.job_series(conn, job, [*CGROUP_SERIES, *JOB_SERIES],
                                      max_points=_points(job))
        window = timeseries.job_window(job)
        hosts = list(job.get("hosts") or [])
        extra = (long_range.hosts_extra(conn, hosts, *window, _points(job), on)
                 if window and hosts else pl.DataFrame(schema=timeseries.EXTRA_SCHEMA))
        gpus = (timeseries.gpu_devices(
                    conn, hosts, *window, max_points=_points(job), cluster=on,
                    since=first_rate(window[0], timeseries.data_interval(conn, jobid, on)))
                if window and hosts and job.get("ngpus") else None)
    nodes = _card(node_view(job, named), "Per node")
    where = (f"jobs in partition {job.get('partition') or '—'} that ended in the "
             f"{data.PEER_DAYS} days before this one")
    peaks = node_peaks(job["cluster"], job.get("partition"))
    performance = pn.Column(_card(footprint_view(job, values, norms, where), "Footprint"),
                            _card(roofline_view(named, peaks), "Roofline"),
                            sizing_mode="stretch_width")
    plots = _card(series_plots(job, named, extra, open_tab(fired, metric_of), gpus),
                  "Time series")
    return [nodes, performance, plots]


if __name__.startswith("bokeh"):
    job_view(query_arg("jobid"), auth.current()).servable(title="Job · hpcperfstats")
