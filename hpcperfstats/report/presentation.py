"""How numbers, bars and advice are shown to people: one place for ``hpcperf job``
and the dashboards, so the terminal and the web never say different things.

The database stores SI base units (``B``, ``B/s``, ``s``, ``1``) so that sums
and ratios stay simple; people read GiB, MB/s, percent and hours. Memory
uses binary prefixes (it is allocated in GiB), bandwidth decimal ones (that
is how networks and disks are rated). Unit ``1`` is a share (efficiency,
coverage: shown in percent) unless the metric is a ratio of two amounts
(:data:`RATIOS`: "10,342x requested", never "1034174.4 %").

Advice comes in two forms, both here: a sentence per flag category
(:func:`advice`, for the job page) and the ``#SBATCH`` lines to change
(:func:`sbatch_advice`), which always change something, in the direction
the flag says, in the form the job was submitted with (``--cpus-per-task``
or ``--ntasks``, ``--mem`` or ``--mem-per-cpu``, from sacct's SubmitLine).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from hpcperfstats.jobs.accounting import format_duration

GiB = 2**30
BAR = 20
#: Head-room the advice adds on top of what the job used.
MEM_HEADROOM = 1.25
TIME_HEADROOM = 1.5
CORE_HEADROOM = 1.2
#: Metrics of unit ``1`` that are ratios of two amounts, with what follows "x".
RATIOS: dict[str, str] = {
    "mem_requested_ratio": "requested",
    "time_limit_ratio": "the run time",
}

_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
_DECIMAL_RATE = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"]
_SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))

# How each stored unit is drawn on a plot axis: (divide by, axis unit).
_PLOT_SCALE: dict[str, tuple[float, str]] = {
    "B": (2.0**30, "GiB"),
    "B/s": (1e6, "MB/s"),
    "cores": (1.0, "cores"),
    "s/s": (1.0, "cores"),
    "1": (0.01, "%"),
    # a count per second: "/s", never "1/s" (the 1 is no unit a person reads)
    "1/s": (1.0, "/s"),
}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _scaled(value: float, base: float, names: list[str]) -> str:
    index = 0
    while abs(value) >= base and index < len(names) - 1:
        value /= base
        index += 1
    digits = 0 if index == 0 else (2 if abs(value) < 10 else 1)
    return f"{value:.{digits}f} {names[index]}"


def _si(value: float, unit: str) -> str:
    for scale, prefix in _SI_PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.1f} {prefix}{unit}"
    return f"{value:.1f} {unit}"


def flops_text(value: float | None) -> str:
    """Floating-point operations per second with an SI prefix: ``128.0 GFLOP/s``."""
    return "—" if _missing(value) else _si(float(value), "FLOP/s")


def intensity_text(value: float | None) -> str:
    """Arithmetic intensity, FLOPs per byte of memory traffic: ``0.025 FLOP/B``."""
    return "—" if _missing(value) else f"{float(value):.3g} FLOP/B"


def duration(seconds: float | None) -> str:
    """``3h 05m`` style; days for long jobs, seconds only for short ones."""
    if _missing(seconds):
        return "—"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


#: sacct's and ``--time``'s ``[D-]HH:MM:SS``; None -> ``UNLIMITED`` (the accounting
#: format's own writer, so advice prints what sbatch and the parser read)
slurm_duration = format_duration


def ratio(value: float, what: str = "") -> str:
    """``10,342x requested``: a ratio of two amounts, never a percentage."""
    digits = 0 if abs(value) >= 10 else (1 if abs(value) >= 1 else 2)
    return f"{value:,.{digits}f}x {what}".rstrip()


def human(value: float | None, unit: str | None) -> str:
    """A stored value with its unit, as a person would write it."""
    if _missing(value):
        return "—"
    unit = unit or ""
    if unit == "B":
        return _scaled(float(value), 1024.0, _BINARY)
    if unit == "B/s":
        return _scaled(float(value), 1000.0, _DECIMAL_RATE)
    if unit == "1":
        return f"{100.0 * value:.1f} %"
    if unit == "s":
        return duration(value)
    if unit in ("cores", "s/s"):
        return f"{value:.2f} cores"
    if unit in ("1/s", "Hz"):
        return _si(float(value), "/s" if unit == "1/s" else "Hz")
    if unit == "nodes":
        return f"{value:.0f}"
    if unit == "W":
        return f"{value:.0f} W"
    if unit == "J":
        return f"{value / 3.6e6:.2f} kWh"
    return f"{value:.4g} {unit}".rstrip()


def metric_text(metric: str, value: float | None, unit: str | None) -> str:
    """A metric's value as shown everywhere: ratios as ``Nx ...``, the rest by unit."""
    if not _missing(value) and metric in RATIOS:
        return ratio(float(value), RATIOS[metric])
    return human(value, unit)


def source_note(source: str | None) -> str:
    """What a metric's ``source`` means for the reader ('' when nothing to add)."""
    if source == "node (shared)":
        return ("node totals of a node other jobs used at the same time: includes their "
                "work; not flagged")
    if source == "node":
        return "node totals"
    if source == "cgroup":
        return "the job's own cgroup"
    return ""


def bar(fraction: float) -> str:
    """``[#####---------------]``: a fraction of an allocation, clipped to 0..1."""
    filled = round(max(0.0, min(1.0, fraction)) * BAR)
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def plot_scale(unit: str | None) -> tuple[float, str]:
    """Divisor and axis label that put a stored unit on a readable scale."""
    return _PLOT_SCALE.get(unit or "", (1.0, unit or ""))


def coverage_text(present: int, expected: int, extra: int = 0) -> str:
    """``7 of 7 (+2 begin/end)``: extra samples are named, never counted over 100 %."""
    more = f" (+{extra} begin/end)" if extra else ""
    return f"{present} of {expected}{more}"


# --- advice -------------------------------------------------------------------

ADVICE: dict[str, str] = {
    "memory": "Set #SBATCH --mem close to what the job used, plus a safety margin: too little "
              "and the job is killed, too much and it waits longer to start.",
    "time": "Set #SBATCH --time close to the real run time, with a margin: shorter limits "
            "start sooner, too short a limit stops the job before it finishes.",
    "cores": "Request fewer cores (#SBATCH --ntasks / --cpus-per-task), or make sure the "
             "program runs in parallel (threads, MPI ranks, OMP_NUM_THREADS).",
    "nodes": "Request fewer nodes (#SBATCH --nodes), or check that srun/mpirun starts work "
             "on every node.",
    "gpus": "Check that the code uses the GPU (CUDA_VISIBLE_DEVICES, the framework's device "
            "setting), or do not request one (#SBATCH --gpus).",
    "lustre_metadata_storm": "Keep many small files on node-local disk ($TMPDIR) or pack "
                             "them into fewer, larger files.",
    "load_imbalance": "Spread the work evenly over the nodes (domain decomposition, "
                      "task sizes) so none waits for the others.",
}


def advice(flag: str, category: str | None = None) -> str:
    """Advice by the rule's category, else by the flag's name, else none."""
    return ADVICE.get(category or "", "") or ADVICE.get(flag, "")


_OPTION = re.compile(r"(?:^|\s)(--[a-z-]+|-[a-zA-Z])(?:[=\s]+(\S+))?")


def submitted_options(submit_line: str | None) -> dict[str, str]:
    """Long option -> value from sacct's SubmitLine (``-c 4`` -> ``--cpus-per-task``).

    Only the command line is known: options set by ``#SBATCH`` lines in the
    script are not in it, so the form falls back to what the request implies.
    """
    short = {"-c": "--cpus-per-task", "-n": "--ntasks", "-N": "--nodes", "-t": "--time",
             "-G": "--gpus"}
    out: dict[str, str] = {}
    for name, value in _OPTION.findall(submit_line or ""):
        out[short.get(name, name)] = value
    return out


def _time_step(seconds: float) -> int:
    """Round limits to 1 min under half an hour, 5 min under two hours, 15 min above
    (what people type)."""
    return 60 if seconds < 1800 else (300 if seconds < 7200 else 900)


def _cores_advice(job: Mapping, busy: float, opts: Mapping[str, str]) -> dict | None:
    ncpus = job.get("ncpus") or 0
    nodes = max(1, job.get("nnodes") or 1)
    if opts.get("--cpus-per-task", "").isdigit():
        was = max(1, int(opts["--cpus-per-task"]))
        tasks = max(1, ncpus // was)
        want = max(1, math.ceil(busy * CORE_HEADROOM / tasks))
        option = "--cpus-per-task"
    else:
        was = ncpus // nodes if "--ntasks-per-node" in opts else ncpus
        per = nodes if "--ntasks-per-node" in opts else 1
        want = max(1, math.ceil(busy * CORE_HEADROOM / per))
        option = "--ntasks-per-node" if "--ntasks-per-node" in opts else "--ntasks"
    if want >= was:
        return None
    return {"kind": "cores", "line": f"#SBATCH {option}={want}",
            "why": f"was {was}; {busy:.1f} of {ncpus} cores busy on average"}


def _memory_advice(job: Mapping, hwm: float, frac: float | None, opts: Mapping[str, str],
                   grow: bool) -> dict | None:
    nodes = max(1, job.get("nnodes") or 1)
    per_node = (job.get("req_mem_bytes") or 0) / nodes
    node_mem = hwm / frac if frac else math.inf
    want = hwm * MEM_HEADROOM
    if grow and want > node_mem:  # more than a node holds: all of it, or spread the data
        return {"kind": "memory", "line": "#SBATCH --mem=0",
                "why": f"all of the node ({node_mem / GiB:.0f}G); peak use "
                       f"{hwm / GiB:.1f}G leaves no head-room: or more nodes / a "
                       "large-memory partition"}
    if "--mem-per-cpu" in opts and job.get("ncpus"):
        cpus = max(1, (job.get("ncpus") or 1) // nodes)
        want_each = max(1, math.ceil(want / cpus / 2**20 / 256) * 256)  # MiB, 256 steps
        was_each = per_node / cpus / 2**20
        if (want_each < was_each) != grow and abs(want_each - was_each) >= 1:
            return {"kind": "memory", "line": f"#SBATCH --mem-per-cpu={want_each}M",
                    "why": f"was {was_each:.0f}M per CPU; peak use {hwm / GiB:.1f}G per node"}
        return None
    want_g = max(1, math.ceil(want / GiB))
    if (want_g * GiB < per_node) == grow or abs(want_g * GiB - per_node) < GiB / 2:
        return None
    return {"kind": "memory", "line": f"#SBATCH --mem={want_g}G",
            "why": f"per node; was {per_node / GiB:.1f}G, peak use {hwm / GiB:.1f}G"}


def _time_advice(job: Mapping, run: float, raise_it: bool) -> dict | None:
    limit = job.get("timelimit_s")
    if not limit:
        return None
    if raise_it:  # the job hit its limit: how long it needs is unknown, ask for more
        step = _time_step(limit * 2)
        want = math.ceil(limit * 2 / step) * step
        why = f"was {slurm_duration(limit)}; the job reached it and was stopped"
    else:
        step = _time_step(run * TIME_HEADROOM)
        want = max(step, math.ceil(run * TIME_HEADROOM / step) * step)
        why = f"was {slurm_duration(limit)}; ran {slurm_duration(int(run))}"
        if want >= limit:
            return None
    return {"kind": "time", "line": f"#SBATCH --time={slurm_duration(want)}", "why": why}


def sbatch_advice(job: Mapping, values: Mapping[str, float | None],
                  flags: Sequence[Mapping], run_s: float | None) -> list[dict]:
    """The ``#SBATCH`` lines to change, one per advice kind of the flags that fired.

    ``job``: job_data fields (ncpus, nnodes, ngpus, req_mem_bytes, timelimit_s,
    submit_line); ``values``: metric -> value. A line that would not change the
    request, or would move it against the flag, is left out.
    """
    kinds = {f["advice"]: f["flag"] for f in flags if f.get("advice")}
    opts = submitted_options(job.get("submit_line"))
    out = []
    nnodes = job.get("nnodes") or 1
    idle = values.get("idle_nodes")
    if "nodes" in kinds and idle and nnodes - int(idle) >= 1:
        out.append({"kind": "nodes", "line": f"#SBATCH --nodes={nnodes - int(idle)}",
                    "why": f"was {nnodes}: {int(idle)} node(s) did no work"})
    eff = values.get("cpu_efficiency")
    if "cores" in kinds and eff is not None and job.get("ncpus"):
        out.append(_cores_advice(job, eff * job["ncpus"], opts))
    hwm = values.get("mem_hwm_bytes")
    if "memory" in kinds and hwm:
        grow = kinds["memory"] == "memory_near_limit"
        out.append(_memory_advice(job, hwm, values.get("mem_hwm_fraction"), opts, grow))
    if "time" in kinds and run_s:
        out.append(_time_advice(job, run_s, kinds["time"] == "time_limit_reached"))
    util, ngpus = values.get("gpu_util"), job.get("ngpus") or 0
    if "gpus" in kinds and util is not None and ngpus:
        want = math.ceil(ngpus * util * 2) if util > 0 else 0
        if want < ngpus:
            out.append({"kind": "gpus", "line": f"#SBATCH --gpus={want}",
                        "why": f"was {ngpus}; used {util:.0%} on average"
                               + ("" if want else ": use a CPU partition")})
    return [a for a in out if a]


# --- the verdict: what a person reads first -------------------------------------

#: Metrics in order of importance (CPU, memory, GPU, I/O, network, energy, bookkeeping):
#: the job page's table and ``hpcperf job`` list them in this order, not alphabetically.
METRIC_ORDER: tuple[str, ...] = (
    "cpu_efficiency", "cpu_cores_avg", "idle_nodes", "cpu_imbalance", "cpu_freq_hz",
    "flops_avg", "mem_hwm_bytes", "mem_hwm_fraction", "mem_requested_ratio", "mem_bw_avg",
    "gpu_util", "gpu_mem_hwm_bytes", "lustre_read_bw_avg", "lustre_write_bw_avg",
    "lustre_md_ops_avg", "block_bw_avg", "net_bw_avg", "ib_bw_avg", "ib_packet_bytes",
    "power_avg_w", "energy_j", "hosts_with_data", "time_limit_ratio",
)  # fmt: skip


def metric_rank(metric: str) -> int:
    """Position of a metric in :data:`METRIC_ORDER` (unknown ones last)."""
    return METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)


#: A metric without a flag rule of its own is judged by the share it is an amount of
#: (1.2 busy cores per node is bad exactly when the CPU efficiency is).
TONE_OF: dict[str, str] = {"cpu_cores_avg": "cpu_efficiency", "mem_hwm_bytes": "mem_hwm_fraction"}


def metric_tone(metric: str, values: Mapping[str, float | None], fired: set[str],
                better: str = "") -> str:
    """``bad``, ``good``, ``neutral`` or ``none`` (no value): the colour of a metric.

    ``fired``: the metrics some flag rule fired on for this job (the rules'
    thresholds, so the colour and the flags never disagree). A metric with a
    direction (``better``) that no rule fired on is good: 100 % CPU efficiency
    is green, never red; one without a direction is neutral.
    """
    if _missing(values.get(metric)):
        return "none"
    judged = TONE_OF.get(metric, metric)
    if judged in fired:
        return "bad"
    return "good" if better or judged != metric else "neutral"


#: The banner a finished job's state earns: (tone, sentence). ``{exit}``: its exit code.
STATE_BANNERS: dict[str, tuple[str, str]] = {
    "FAILED": ("bad", "Failed: the job ended with exit code {exit}."),
    "TIMEOUT": ("bad", "Timed out: Slurm stopped the job at its time limit before it finished."),
    "OUT_OF_MEMORY": ("bad", "Out of memory: the job was killed when it used more memory "
                             "than it requested."),
    "NODE_FAIL": ("bad", "Node failure: a node of the job failed; the job did not finish."),
    "PREEMPTED": ("warn", "Preempted: a higher-priority job took the nodes."),
    "CANCELLED": ("warn", "Cancelled (exit code {exit}) before it finished."),
    "RUNNING": ("info", "Running: the numbers below are provisional, computed from the "
                        "samples so far."),
}


def state_banner(state: str | None, exit_code: str | None = None) -> tuple[str, str] | None:
    """(tone, sentence) for a state worth a banner (``CANCELLED by 123`` counts as
    CANCELLED); None for a job that completed normally."""
    key = (state or "").split(" ")[0].upper()
    if key not in STATE_BANNERS:
        return None
    tone, text = STATE_BANNERS[key]
    return tone, text.format(exit=exit_code or "unknown")


def _count(value: float) -> str:
    """Cores as people say them: whole when (nearly) whole, else one decimal."""
    return f"{value:.0f}" if value >= 10 or abs(value - round(value)) < 0.05 else f"{value:.1f}"


def verdict(job: Mapping, values: Mapping[str, float | None], running: bool = False,
            reason: str | None = None) -> str:
    """The one sentence at the top of the job page and of ``hpcperf job``.

    ``used 2 of 32 cores; 30 of 32 requested cores idle; ...``: what was used
    of what was allocated, in that order: cores, nodes, memory, GPUs.
    ``reason``: why there is nothing to say, when there is nothing.
    """
    ncpus, nnodes = job.get("ncpus") or 0, max(1, job.get("nnodes") or 1)
    parts = []
    eff = values.get("cpu_efficiency")
    if not _missing(eff) and ncpus:
        busy = eff * ncpus
        parts.append(f"used {_count(busy)} of {ncpus} cores")
        idle = ncpus - busy
        if idle >= 0.25 * ncpus:
            parts.append(f"{_count(idle)} of {ncpus} requested cores idle")
    idle_nodes = values.get("idle_nodes")
    if not _missing(idle_nodes) and idle_nodes >= 1:
        parts.append(f"{idle_nodes:.0f} of {nnodes} nodes did no work")
    hwm, frac = values.get("mem_hwm_bytes"), values.get("mem_hwm_fraction")
    if not _missing(hwm):
        req = (job.get("req_mem_bytes") or 0) / nnodes
        text = f"peak memory {human(hwm, 'B')}"
        if req:
            text += f" of {human(req, 'B')} requested per node"
        if not _missing(frac) and frac > 0.9:
            text += f" ({frac:.0%} of the node)"
        parts.append(text)
    util = values.get("gpu_util")
    if not _missing(util) and job.get("ngpus"):
        parts.append(f"{job['ngpus']} GPU(s) busy {util:.0%} of the time")
    if not parts:
        return f"No measurements yet: {reason or 'no data'}."
    sentence = "; ".join(parts)
    sentence = ("So far: " + sentence) if running else sentence[0].upper() + sentence[1:]
    return sentence + "."


def missing_line(rows: Sequence[tuple[str, str | None]]) -> str:
    """The metrics that have no value, folded into one line grouped by why:
    ``No value: GPU utilisation, GPU memory — no GPUs allocated; FLOPS — no data.``"""
    if not rows:
        return ""
    by_reason: dict[str, list[str]] = {}
    for label, reason in rows:
        by_reason.setdefault(reason or "not computed", []).append(label)
    parts = [f"{', '.join(labels)} — {reason}" for reason, labels in by_reason.items()]
    return "No value: " + "; ".join(parts) + "."


#: The headings around flags and advice, the same in ``hpcperf job`` and on the page.
FLAGS_HEADING = "What to look at:"
NO_FLAGS = "No problems found."
SBATCH_HEADING = "Next time, change these lines in your job script:"


def run_seconds(job: Mapping) -> float | None:
    """Seconds from start to end (datetimes or ISO text), else sacct's elapsed."""
    start, end = job.get("start_time"), job.get("end_time")
    if start and end:
        start, end = (datetime.fromisoformat(t) if isinstance(t, str) else t
                      for t in (start, end))
        return (end - start).total_seconds()
    return job.get("elapsed_s")


def sbatch_text(lines: Sequence[Mapping]) -> list[str]:
    """``#SBATCH --nodes=2            # was 4: ...``: advice as it is pasted into a script."""
    return [f"{a['line']:<28} # {a['why']}" for a in lines]


#: Flags that warn of a job about to fail (killed for memory, stopped at its limit) come
#: before the ones about waste; within each group, by the importance of their metric.
RISK_FLAGS = ("memory_near_limit", "time_limit_reached")


def order_flags(flags: Sequence[Mapping], metric_of: Mapping[str, str]) -> list[Mapping]:
    """Flags in the order they are shown (and the plot tab the job page opens on):
    risks first, then by :func:`metric_rank` of the metric each flag's rule judges."""
    def key(flag: Mapping) -> tuple[bool, int, str]:
        name = str(flag.get("flag") or "")
        return name not in RISK_FLAGS, metric_rank(metric_of.get(name, "")), name

    return sorted(flags, key=key)


# --- names of raw types and events on plots -------------------------------------

#: What each monitor type is, for people (plot titles of types no named series covers).
TYPE_NAMES: dict[str, str] = {
    "cpu": "CPU", "mem": "Memory", "numa": "NUMA accesses", "net": "Network",
    "block": "Block devices", "ps": "Processes", "vm": "Virtual memory", "vfs": "File handles",
    "sysv_shm": "Shared memory", "tmpfs": "tmpfs", "llite": "Lustre client", "nfs": "NFS client",
    "rapl": "Energy (RAPL)", "pmc": "Performance counters", "imc": "Memory controller",
    "ib": "InfiniBand", "ib_ext": "InfiniBand", "opa": "Omni-Path", "nvidia_gpu": "GPU",
    "nvidia_mig": "GPU (MIG)", "cgroup": "Job cgroup",
}
#: Events the raw format stores scaled: (divide by, unit shown). ``load`` is x100.
EVENT_SCALE: dict[tuple[str, str], tuple[float, str]] = {
    ("ps", "load_1"): (100.0, ""), ("ps", "load_5"): (100.0, ""),
    ("ps", "load_15"): (100.0, ""),
}


def event_label(type_: str, event: str) -> str:
    """``NUMA accesses: local node`` for ``numa``/``local_node``."""
    return f"{TYPE_NAMES.get(type_, type_)}: {event.replace('_', ' ')}"


def event_scale(type_: str, event: str, unit: str | None) -> tuple[float, str]:
    """Divisor and axis unit of a raw event: its own scale where the format has one
    (load x100, no unit), else its stored unit's (:func:`plot_scale`)."""
    return EVENT_SCALE.get((type_, event)) or plot_scale(unit)


# --- text from people: shown, never obeyed ---------------------------------------

#: The C1 controls: ``\x9b`` is CSI (``ESC [``) to a terminal that honours 8-bit controls.
_C1 = range(0x80, 0xA0)


def printable(text: str, keep: str = "") -> str:
    """Text safe to show on a page, in a log or on a terminal: every control character
    (C0, DEL, C1: escape sequences, ``\\r`` overwrites, NUL) as a visible ``\\xNN``,
    but for those in ``keep`` (a job script keeps its newlines and tabs)."""
    return "".join(ch if ((ch >= " " and ch != "\x7f" and ord(ch) not in _C1) or ch in keep)
                   else f"\\x{ord(ch):02x}" for ch in text)


# --- what the job held: GPUs --------------------------------------------------------

#: Why a job has no GPU figures: the metrics' reason (``hpcperfstats.jobs.metrics``).
NO_GPUS = "no GPUs allocated"


def gpu_hours(job: Mapping) -> float | None:
    """GPUs allocated x run time in hours (what the job held, busy or not); None
    without GPUs."""
    ngpus, elapsed = job.get("ngpus"), job.get("elapsed_s")
    return ngpus * elapsed / 3600 if ngpus and elapsed is not None else None


def gpu_hours_text(job: Mapping) -> str:
    """``24.0`` GPU-hours, ``—`` without GPUs (the page's accounting row)."""
    hours = gpu_hours(job)
    return "—" if hours is None else f"{hours:,.1f}"


def gpu_summary(job: Mapping, values: Mapping[str, float | None]) -> dict:
    """What the job page shows of a job's GPUs, as data (``hpcperf job``, the data API):
    ``gpus`` allocated, ``gpu_hours``, ``utilisation`` (busy share over the GPUs
    allocated) and ``memory_hwm_bytes`` (the peak GPU memory in use), each None where
    unknown; a job without GPUs has only the ``reason``, never a 0 % that reads as
    waste."""
    ngpus = job.get("ngpus") or 0
    if not ngpus:
        return {"gpus": 0, "gpu_hours": None, "utilisation": None, "memory_hwm_bytes": None,
                "reason": NO_GPUS}
    return {"gpus": ngpus, "gpu_hours": gpu_hours(job), "utilisation": values.get("gpu_util"),
            "memory_hwm_bytes": values.get("gpu_mem_hwm_bytes"), "reason": None}


def gpu_text(summary: Mapping, measured: bool = True) -> str:
    """``4 GPUs, 24.0 GPU-hours, busy 90.0 %, peak GPU memory 236.0 GiB``, or the reason
    there is nothing to say (``no GPUs allocated``). ``measured=False``: what was held
    only (where the use is shown beside it)."""
    if not summary.get("gpus"):
        return summary.get("reason") or NO_GPUS
    parts = [f"{summary['gpus']} GPU{'s' if summary['gpus'] != 1 else ''}"]
    if not _missing(summary.get("gpu_hours")):
        parts.append(f"{summary['gpu_hours']:,.1f} GPU-hours")
    if not measured:
        return ", ".join(parts)
    if not _missing(summary.get("utilisation")):
        parts.append(f"busy {human(summary['utilisation'], '1')}")
    if not _missing(summary.get("memory_hwm_bytes")):
        parts.append(f"peak GPU memory {human(summary['memory_hwm_bytes'], 'B')}")
    return ", ".join(parts)


# --- what the job ran: its script -------------------------------------------------

#: where no script of the job is stored
NO_SCRIPT = ("Job script: not stored. Slurm keeps job scripts with "
             "AccountingStoreFlags=job_script and hpcperf-sacct-dump --scripts collects "
             "them (not a batch job, or a job from before that: none).")
#: what an account-mate who may see the job reads instead of its script
NOT_YOURS = "Job script: only the job's owner and staff can read it."


def script_entry(row: Mapping | None, allowed: bool) -> dict:
    """A job's script as the page shows it, as data: ``status`` (``shown``, ``hidden``:
    the reader is neither its owner nor staff, ``missing``: none stored,
    ``set_aside``: stored as received but not shown), ``script`` (the text, only when
    shown), ``size_bytes``, ``truncated`` and ``note`` (the sentence shown instead of,
    or above, the text). ``row``: the ``job_scripts`` row (script, size_bytes,
    truncated, problem) the access rule let through; ``allowed``: that rule's answer
    for this reader (``dashboards.data.may_read_script``). A hidden script says
    nothing of itself, not even whether there is one."""
    empty = {"script": None, "size_bytes": None, "truncated": None}
    if not allowed:
        return {"status": "hidden", **empty, "note": NOT_YOURS}
    if row is None:
        return {"status": "missing", **empty, "note": NO_SCRIPT}
    if row.get("problem"):
        return {"status": "set_aside", **empty, "size_bytes": row.get("size_bytes"),
                "note": f"Job script: set aside, not shown: it {row['problem']} (staff: the "
                        "quarantine keeps it as received)."}
    text = str(row.get("script") or "")
    note = ""
    if row.get("truncated"):
        note = (f"Only the first {human(len(text.encode()), 'B')} of "
                f"{human(row.get('size_bytes'), 'B')} are stored "
                "(HPCPERF_JOB_SCRIPT_MAX_BYTES).")
    return {"status": "shown", "script": text, "size_bytes": row.get("size_bytes"),
            "truncated": bool(row.get("truncated")), "note": note}
