"""The demo cluster: its configuration and its job plan, with ground truth.

The plan is the script the synthetic nodes act out. Every job says how busy
each of its nodes is, how much process memory it holds and how much network
traffic it makes; the generator turns exactly those numbers into counters, so
tests and benchmarks can check what the pipeline computes against what was
put in. Jobs are placed on the sample grid (begin and end samples fall on
interval boundaries) and never share a node, so node totals equal job usage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import numpy as np

GiB = 2**30

#: Process memory of a node without a job (OS daemons), as a share of its memory.
OS_MEM_SHARE = 0.02
#: Network traffic of every node (eth0: ssh, NFS, monitoring), bytes/s rx+tx.
BACKGROUND_NET = 2000.0

USERS = (
    ("alice", "TG-AST260001"), ("bob", "TG-CHE260002"), ("carol", "TG-PHY260003"),
    ("dave", "TG-MCB260004"), ("erin", "TG-EAR260005"), ("frank", "TG-ASC260006"),
    ("grace", "TG-CHE260002"), ("heidi", "TG-AST260001"),
)  # fmt: skip
APPS = ("lammps", "wrf", "gromacs", "namd", "vasp", "openfoam", "python", "cp2k")
FILLER_HOURS = (0.5, 1, 2, 3, 4, 6, 8, 12)
FIRST_JOBID = 1000001
#: ``demo``: small nodes (16 CPUs, 2 NUMA nodes, ~2 KB a sample), the tests' cluster;
#: ``fixture``: nodes shaped like the Stampede3 fixture (128 CPUs, 8 NUMA nodes,
#: 6 disks, 6 interfaces, an InfiniBand port, two Lustre file systems, ~40
#: processes: ~14 KB a sample), for benchmarks at a real node's size.
SHAPES = ("demo", "fixture")


#: Start of the default timeline (the tests' cluster). The plan puts its overnight job
#: where this timeline crosses UTC midnight whatever the anchor, so a demo anchored
#: elsewhere (``DemoConfig.ending_at``: ending now) has the same jobs, users and values.
REFERENCE_START = datetime(2026, 11, 20, 12, tzinfo=UTC)


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of the demo cluster and the time range it covers.

    Only times depend on ``start``: job ids, users, placement and every value are
    the same for any anchor (the timeline is shifted as a whole).
    """

    nodes: int = 16
    start: datetime = REFERENCE_START
    hours: int = 24
    interval: int = 300
    seed: int = 0
    cluster: str = "demo"
    cpus_per_node: int = 16
    numa_nodes: int = 2
    mem_per_node_bytes: int = 64 * GiB
    shape: str = "demo"
    #: number of the first rack in host names (two clusters in one archive need two)
    first_rack: int = 1
    #: GPU nodes (``g<rack>-NNN``, after the CPU nodes) running the GPU jobs
    #: (:data:`GPU_JOBS`); ``fixture`` shape: none unless given
    gpu_nodes: int = 1

    @classmethod
    def of_shape(cls, shape: str, **kw) -> DemoConfig:
        """A config of ``shape`` (:data:`SHAPES`): ``fixture`` also sets the
        fixture node's CPUs, NUMA nodes and memory unless given."""
        if shape == "fixture":
            kw = {"cpus_per_node": 128, "numa_nodes": 8, "mem_per_node_bytes": 256 * GiB,
                  "gpu_nodes": 0, **kw}
        return cls(shape=shape, **kw)

    @classmethod
    def ending_at(cls, end: datetime, shape: str = "demo", **kw) -> DemoConfig:
        """A config of ``shape`` whose range ends at ``end`` (rounded down to whole
        intervals since the epoch): its last sample is one interval before, so a demo
        anchored at now shows every node reporting and fresh data."""
        if end.tzinfo is None:
            raise ValueError("the demo's end time must be timezone-aware")
        interval = kw.get("interval", cls.interval)
        hours = kw.get("hours", cls.hours)
        stamp = int(end.timestamp()) // interval * interval
        start = datetime.fromtimestamp(stamp, UTC) - timedelta(hours=hours)
        return cls.of_shape(shape, **{**kw, "start": start})

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {self.shape!r}")
        if self.start.tzinfo is None:
            raise ValueError("DemoConfig.start must be timezone-aware")
        if self.nodes < 1 or self.interval < 1 or self.hours <= 0:
            raise ValueError("nodes, interval and hours must be positive")
        if self.gpu_nodes < 0:
            raise ValueError("gpu_nodes must not be negative")
        if self.cpus_per_node < 1 or not 1 <= self.numa_nodes <= self.cpus_per_node:
            raise ValueError("need 1 <= numa_nodes <= cpus_per_node")

    @property
    def samples(self) -> int:
        """Samples per host: the grid start + k*interval, k < samples."""
        return int(self.hours * 3600) // self.interval

    @property
    def end(self) -> datetime:
        """End of the range (exclusive): the moment the last day's dump is taken."""
        return self.start + timedelta(hours=self.hours)

    def time_at(self, k: int) -> datetime:
        return self.start + timedelta(seconds=k * self.interval)

    def cpu_hosts(self) -> list[str]:
        """Host names ``c001-001`` ... (64 nodes to a rack, like TACC's)."""
        return [f"c{i // 64 + self.first_rack:03d}-{i % 64 + 1:03d}" for i in range(self.nodes)]

    def gpu_hosts(self) -> list[str]:
        """The GPU nodes' names ``g001-001`` ..., one rack of their own."""
        return [f"g{self.first_rack:03d}-{i + 1:03d}" for i in range(self.gpu_nodes)]

    def hosts(self) -> list[str]:
        """Every host: the CPU nodes, then the GPU nodes."""
        return self.cpu_hosts() + self.gpu_hosts()

    @property
    def all_nodes(self) -> int:
        """CPU and GPU nodes: hosts writing samples."""
        return self.nodes + self.gpu_nodes


@dataclass(frozen=True)
class GpuUse:
    """What a job does with one GPU while it runs: busy share (NVML utilisation, %),
    memory in use and power draw. Ground truth of the ``nvidia_gpu`` rows."""

    util_pct: int
    mem_bytes: int
    power_w: float


@dataclass(frozen=True)
class DemoJob:
    """One job of the plan, as Slurm records it, plus per-host ground truth.

    ``busy_cores``, ``mem_used_bytes`` (process memory: MemUsed - FilePages -
    Slab) and ``net_bytes_per_s`` (rx+tx, loopback excluded) are what each
    host of the job does while the job runs; an idle node of a job reads 0
    busy cores. ``end`` is None for a job still running at the range's end.
    """

    jobid: str
    user: str
    account: str
    partition: str
    qos: str
    jobname: str
    state: str
    exit_code: str
    submit: datetime
    start: datetime
    end: datetime | None
    elapsed_s: int
    timelimit_s: int
    hosts: tuple[str, ...]
    ncpus: int
    req_mem_bytes: int
    behaviour: str
    busy_cores: Mapping[str, float] = field(hash=False)
    mem_used_bytes: Mapping[str, int] = field(hash=False)
    net_bytes_per_s: Mapping[str, float] = field(hash=False)
    #: per GPU the job uses on each of its nodes (GPU index -> :class:`GpuUse`);
    #: the node's other GPUs stay at rest. Empty: a job without GPUs
    gpus: Mapping[str, GpuUse] = field(default_factory=dict, hash=False)

    @property
    def nnodes(self) -> int:
        return len(self.hosts)

    @property
    def ngpus(self) -> int:
        """GPUs allocated (AllocTRES ``gres/gpu``): those it uses, on every node."""
        return len(self.gpus) * self.nnodes


@dataclass(frozen=True)
class DemoPlan:
    """All jobs of a config, in job id order, and the nodes' fixed roles."""

    config: DemoConfig
    hosts: tuple[str, ...]
    jobs: tuple[DemoJob, ...]
    #: the host whose 32-bit block ``rd_ticks`` counter wraps during the range
    wrap_host: str

    def job(self, jobid: str) -> DemoJob:
        for job in self.jobs:
            if job.jobid == jobid:
                return job
        raise KeyError(jobid)

    def by_behaviour(self, behaviour: str) -> list[DemoJob]:
        return [j for j in self.jobs if j.behaviour == behaviour]

    @property
    def idle_hosts(self) -> list[str]:
        """Hosts that run no job at all during the range."""
        used = {h for j in self.jobs for h in j.hosts}
        return [h for h in self.hosts if h not in used]


@dataclass
class _Draft:
    """A job being placed: sample indices and per-host behaviour shares."""

    behaviour: str
    nodes: list[int]
    ks: int  # begin sample
    ke: int  # end sample (>= samples: still running at the range's end)
    busy: list[float]  # busy cores per node
    mem_share: list[float]  # process memory per node, share of node memory
    net: list[float]  # job traffic per node, bytes/s (background added later)
    state: str = "COMPLETED"
    exit_code: str = "0:0"
    jobname: str = ""
    timelimit_s: int | None = None


def _special_jobs(cfg: DemoConfig) -> list[tuple[int, list[_Draft]]]:
    """The scripted jobs, as (nodes needed, drafts on those nodes as 0..n-1).

    Times are shares of the range snapped to the grid, so any range length
    gets the same story; a job that does not fit (too short a range, no
    midnight inside it) is left out.
    """
    n, c, iv = cfg.samples, cfg.cpus_per_node, cfg.interval

    def at(share: float) -> int:
        return max(1, min(n - 2, round(share * n)))

    out: list[tuple[int, list[_Draft]]] = [
        (2, [_Draft("cpu_bound", [0, 1], 1, at(0.35), [c, c], [0.3, 0.3], [1e6, 1e6],
                    jobname="cpu_bound")]),
        (2, [_Draft("half_cores", [0, 1], 2, at(0.25), [c // 2] * 2, [0.2] * 2, [5e5] * 2,
                    jobname="half_cores")]),
    ]  # fmt: skip
    mem = _Draft("memory_heavy", [0], 1, at(0.3), [c / 4], [0.9], [1e5], jobname="mem_heavy")
    failed = _Draft("failed", [0], mem.ke + 2, mem.ke + 5, [c], [0.1], [1e5],
                    state="FAILED", exit_code="1:0", jobname="fails_fast")  # fmt: skip
    timeout = _Draft("timeout", [0], failed.ke + 2, failed.ke + 2 + max(2, round(0.2 * n)),
                     [c], [0.5], [2e5], state="TIMEOUT", jobname="timeout")  # fmt: skip
    timeout.timelimit_s = (timeout.ke - timeout.ks) * iv
    out.append((1, [mem, failed, timeout]))
    out.append((4, [_Draft("idle_nodes", [0, 1, 2, 3], 3, at(0.45), [c, c, 0, 0],
                           [0.4, 0.4, OS_MEM_SHARE, OS_MEM_SHARE], [2e7, 2e7, 0, 0],
                           jobname="idle_nodes")]))  # fmt: skip
    out.append((2, [_Draft("network_heavy", [0, 1], 1, at(0.4), [c / 2] * 2, [0.25] * 2,
                           [1.2e9] * 2, jobname="net_heavy")]))  # fmt: skip
    midnight = _midnight_draft(cfg)
    if midnight is not None:
        out.append((1, [midnight]))
    out.append((1, [_Draft("cancelled", [0], at(0.1), at(0.2), [c / 4], [0.15], [1e5],
                           state="CANCELLED", exit_code="0:15", jobname="cancelled")]))  # fmt: skip
    return [(need, [d for d in drafts if d.ke - d.ks >= 2 and d.ke <= n - 2])
            for need, drafts in out]  # fmt: skip


def _midnight_draft(cfg: DemoConfig) -> _Draft | None:
    """A job from two hours before the first UTC midnight of the default timeline
    (:data:`REFERENCE_START`) to two hours after. Placed by that timeline, not by
    ``cfg.start``, so the plan does not depend on the anchor; it crosses midnight
    whenever the anchor's time of day is the default's (the tests' cluster)."""
    midnight = datetime.combine(REFERENCE_START.date() + timedelta(days=1), time(0), UTC)
    km = math.ceil((midnight - REFERENCE_START).total_seconds() / cfg.interval)
    span = min(7200 // cfg.interval, km - 1, cfg.samples - 2 - km)
    if span < 1:
        return None
    c = cfg.cpus_per_node
    return _Draft("midnight", [0], km - span, km + span, [0.75 * c], [0.4], [3e6],
                  jobname="overnight")  # fmt: skip


def _fill(rng: np.random.Generator, cfg: DemoConfig, nodes: list[int],
          busy_until: int, stop: int | None) -> list[_Draft]:  # fmt: skip
    """Filler jobs on ``nodes`` from after sample ``busy_until`` up to ``stop``.

    ``stop`` None means open-ended: the last job may run past the range and
    is then still RUNNING when the last dump is taken.
    """
    n, c = cfg.samples, cfg.cpus_per_node
    out: list[_Draft] = []
    k = busy_until + int(rng.integers(1, 4))
    while k <= n - 3:
        hours = float(rng.choice(FILLER_HOURS))
        ke = k + max(2, round(hours * 3600 / cfg.interval))
        if stop is not None and ke > stop - 1:
            ke = stop - 1
            if ke - k < 2:
                break
        busy = round(float(rng.uniform(0.1, 1.0)) * c, 2)
        share = round(float(rng.uniform(0.05, 0.7)), 3)
        net = round(float(10 ** rng.uniform(3, 8)))
        d = _Draft("filler", list(nodes), k, ke, [busy] * len(nodes), [share] * len(nodes),
                   [net] * len(nodes), jobname=str(rng.choice(APPS)))  # fmt: skip
        if ke >= n:
            d.state = "RUNNING"
        elif rng.random() < 0.05:
            d.state, d.exit_code = "FAILED", "2:0"
        out.append(d)
        if stop is None and ke >= n:
            break
        k = ke + int(rng.integers(1, 4))
        if stop is not None and k >= stop - 2:
            break
    return out


def _place(cfg: DemoConfig, rng: np.random.Generator) -> list[_Draft]:
    """Scripted jobs on the first nodes, filler on the rest, a few nodes left idle."""
    n_idle = max(1, cfg.nodes // 16) if cfg.nodes > 1 else 0
    free = list(range(cfg.nodes - n_idle))
    drafts: list[_Draft] = []
    for need, scripted in _special_jobs(cfg):
        if need > len(free) or not scripted:
            continue
        nodes, free = free[:need], free[need:]
        for d in scripted:
            d.nodes = [nodes[i] for i in d.nodes]
        drafts += scripted
        # filler in the gaps before, between and after the scripted jobs
        marks = sorted((d.ks, d.ke) for d in scripted)
        prev = -1
        for ks, ke in marks:
            if ks - prev > 6:
                drafts += _fill(rng, cfg, nodes, prev, ks)
            prev = ke
        drafts += _fill(rng, cfg, nodes, prev, None)
    while free:
        size = min(len(free), int(rng.choice((1, 1, 2, 4))))
        nodes, free = free[:size], free[size:]
        drafts += _fill(rng, cfg, nodes, -1, None)
    return drafts


def make_plan(cfg: DemoConfig) -> DemoPlan:
    """The deterministic job plan of ``cfg`` (same seed, same plan)."""
    rng = np.random.default_rng([cfg.seed, 7])
    hosts = cfg.hosts()
    drafts = sorted(_place(cfg, rng), key=lambda d: (d.ks, d.nodes[0]))
    node_mem = cfg.mem_per_node_bytes
    unit = 1024 * cfg.numa_nodes  # whole KiB on every NUMA node
    per_node_req = node_mem * 15 // 16 // 2**20 * 2**20
    jobs: list[DemoJob] = []
    for i, d in enumerate(drafts):
        user, account = USERS[int(rng.integers(len(USERS)))]
        names = [hosts[x] for x in d.nodes]
        start = cfg.time_at(d.ks)
        running = d.ke >= cfg.samples
        end = None if running else cfg.time_at(d.ke)
        elapsed = int(((end or cfg.end) - start).total_seconds())
        planned = (d.ke - d.ks) * cfg.interval
        hours = math.ceil((planned + 60) / 3600) * int(rng.choice((1, 2)))
        limit = d.timelimit_s or hours * 3600
        jobs.append(
            DemoJob(
                jobid=str(FIRST_JOBID + i),
                user=user,
                account=account,
                partition="normal" if len(names) > 1 else "small",
                qos="normal",
                jobname=d.jobname,
                state=d.state,
                exit_code=d.exit_code,
                submit=start - timedelta(seconds=int(rng.integers(5, 3600))),
                start=start,
                end=end,
                elapsed_s=elapsed,
                timelimit_s=limit,
                hosts=tuple(names),
                ncpus=cfg.cpus_per_node * len(names),
                req_mem_bytes=per_node_req * len(names),
                behaviour=d.behaviour,
                busy_cores=dict(zip(names, map(float, d.busy), strict=True)),
                mem_used_bytes={
                    h: round(max(s, OS_MEM_SHARE) * node_mem / unit) * unit
                    for h, s in zip(names, d.mem_share, strict=True)
                },
                net_bytes_per_s={
                    h: BACKGROUND_NET + float(v) for h, v in zip(names, d.net, strict=True)
                },
            )
        )
    jobs += gpu_jobs(cfg, len(jobs))
    return DemoPlan(config=cfg, hosts=tuple(hosts), jobs=tuple(jobs), wrap_host=hosts[0])


#: GPUs per GPU node (80 GiB each) and a GPU at rest's power
GPUS_PER_NODE, GPU_MEM = 4, 80 * GiB
GPU_IDLE_W = 60.0
#: The GPU jobs, one after the other on each GPU node: (behaviour, job name, begin
#: and end as shares of the range, busy cores, process memory share, per GPU used).
#: ``gpu_training`` keeps its four GPUs busy (PyTorch training: 85-95 %, 56-62 GiB,
#: 380-410 W); ``gpu_idle`` holds two GPUs it barely touches (its work ran on the CPU).
GPU_JOBS: tuple[tuple[str, str, float, float, float, float, tuple[GpuUse, ...]], ...] = (
    ("gpu_training", "train_resnet", 0.2, 0.45, 12.0, 0.35,
     (GpuUse(92, 60 * GiB, 400.0), GpuUse(88, 58 * GiB, 390.0), GpuUse(95, 62 * GiB, 410.0),
      GpuUse(85, 56 * GiB, 380.0))),
    ("gpu_idle", "prep_data", 0.55, 0.7, 14.0, 0.25,
     (GpuUse(2, 1 * GiB, 70.0), GpuUse(0, 0, GPU_IDLE_W))),
)  # fmt: skip


def gpu_jobs(cfg: DemoConfig, first_index: int) -> list[DemoJob]:
    """The GPU nodes' jobs (:data:`GPU_JOBS`), numbered after every other job so no
    other job's id, user or value changes; no random draw (user ``grace``)."""
    n, out = cfg.samples, []
    unit = 1024 * cfg.numa_nodes
    per_node_req = cfg.mem_per_node_bytes * 15 // 16 // 2**20 * 2**20
    for host in cfg.gpu_hosts():
        for behaviour, name, begin, end, busy, share, gpus in GPU_JOBS:
            ks, ke = max(1, round(begin * n)), min(n - 2, round(end * n))
            if ke - ks < 2:
                continue
            start, stop = cfg.time_at(ks), cfg.time_at(ke)
            out.append(DemoJob(
                jobid=str(FIRST_JOBID + first_index + len(out)), user="grace",
                account="TG-CHE260002", partition="gpu", qos="normal", jobname=name,
                state="COMPLETED", exit_code="0:0", submit=start - timedelta(seconds=600),
                start=start, end=stop, elapsed_s=int((stop - start).total_seconds()),
                timelimit_s=math.ceil((ke - ks) * cfg.interval / 3600 + 1) * 3600,
                hosts=(host,), ncpus=cfg.cpus_per_node, req_mem_bytes=per_node_req,
                behaviour=behaviour, busy_cores={host: busy},
                mem_used_bytes={host: round(share * cfg.mem_per_node_bytes / unit) * unit},
                net_bytes_per_s={host: BACKGROUND_NET + 5e6},
                gpus={str(i): use for i, use in enumerate(gpus)}))
    return out


#: Floating-point work and memory-controller traffic per busy core, by what a job
#: does: (FLOP/s, bytes/s). The ground truth of the ``pmc``/``imc`` rows of the nodes
#: with hardware counters (:func:`perf_hosts`): the compute-bound job makes 8 FLOPs
#: per byte, the memory-heavy one 1/40, the rest 1.
PERF_PER_CORE: dict[str, tuple[float, float]] = {
    "cpu_bound": (8e9, 1e9), "memory_heavy": (2.5e8, 1e10),
}
FILLER_PERF = (2e9, 2e9)
#: memory-controller traffic of a node's OS (also without a job), bytes/s
IDLE_MEM_BW = 4e7
#: the behaviours whose nodes have hardware counters (pmc, imc), InfiniBand port
#: counters and a Lustre client in the ``demo`` shape: the other nodes stay as they
#: were, so their jobs keep their "not measured" reasons
PERF_BEHAVIOURS = ("cpu_bound", "memory_heavy")


def perf_per_core(job: DemoJob) -> tuple[float, float]:
    """(FLOP/s, memory bytes/s) per busy core of ``job`` on a node with counters."""
    return PERF_PER_CORE.get(job.behaviour, FILLER_PERF)


def perf_hosts(plan: DemoPlan) -> list[str]:
    """Nodes with hardware counters: those of the compute- and the memory-bound job."""
    hosts = {h for b in PERF_BEHAVIOURS for j in plan.by_behaviour(b) for h in j.hosts}
    return [h for h in plan.hosts if h in hosts]


def idle_mem_bytes(cfg: DemoConfig) -> int:
    """Process memory of a node without a job (same rounding as job memory)."""
    unit = 1024 * cfg.numa_nodes
    return round(OS_MEM_SHARE * cfg.mem_per_node_bytes / unit) * unit
