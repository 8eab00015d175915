"""Raw stats messages and accounting dumps of the demo cluster.

Counters are built for all hosts at once, one time step at a time, from the
plan's per-host rates (numpy arithmetic over hosts, one vectorised draw of
noise per step), and each sample is written with the monitor's own raw
format writer, so synthetic nodes look exactly like real ones to the
pipeline. Noise only moves time between fields of one total (user vs.
system, idle vs. iowait) or is a few tenths of a percent, so rates the
pipeline computes match the plan's ground truth within 1 %.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from hpcperf_monitor import schemas
from hpcperf_monitor.rawformat import Header, Sample, procexe_device, write_header, write_sample

from hpcperf_demo.cluster import (
    APPS,
    BACKGROUND_NET,
    GPU_IDLE_W,
    GPU_MEM,
    GPUS_PER_NODE,
    IDLE_MEM_BW,
    DemoConfig,
    DemoJob,
    DemoPlan,
    idle_mem_bytes,
    make_plan,
    perf_hosts,
    perf_per_core,
)
from hpcperfstats.jobs.accounting import format_accounting, format_duration
from hpcperfstats.jobs.scripts import format_scripts

UNAME = (
    "Linux x86_64 5.14.0-611.24.1.el9_7.x86_64 #1 SMP PREEMPT_DYNAMIC Fri Jan 23 11:42:43 UTC 2026"
)
NET_DEVICES = ("lo", "eth0", "ib0")
BLOCK_DEVICE = "nvme0n1"
IB_SHARE = 0.9  # share of a job's traffic on IPoIB; the rest and the background on eth0
CACHE_SHARE_IDLE, CACHE_SHARE_JOB, SLAB_SHARE = 0.03, 0.04, 0.015
WRAP = 2**32


#: the executable each demo application runs (cp2k has no rule: it shows as unknown)
APP_EXES = {
    "lammps": "/opt/apps/lammps/2Aug2023/bin/lmp_mpi",
    "wrf": "/opt/apps/wrf/4.5/main/wrf.exe",
    "gromacs": "/opt/apps/gromacs/2024.1/bin/gmx_mpi",
    "namd": "/opt/apps/namd/3.0/namd3",
    "vasp": "/opt/apps/vasp/6.4.2/bin/vasp_std",
    "openfoam": "/opt/apps/openfoam11/platforms/linux64GccDPInt32Opt/bin/simpleFoam",
    "python": "/usr/bin/python3.11",
    "cp2k": "/opt/apps/cp2k/2024.1/exe/local/cp2k.psmp",
}
JOB_SCRIPT = "/usr/bin/bash"
#: ranks of the application per node (procexe rows); the batch script is one more
RANKS = 4
SCRIPT_CS = 2  # the batch script's CPU time per interval, centiseconds


def job_app(job: DemoJob, index: int) -> str:
    """The application a demo job runs: its name if it is one, python for a GPU job
    (PyTorch), else one by its index."""
    if job.gpus:
        return "python"
    return job.jobname if job.jobname in APP_EXES else APPS[index % len(APPS)]


def procexe_rows(app: str, index: int, busy_cs: int, elapsed: int) -> dict[str, tuple[int, int]]:
    """``procexe`` rows of one job on one node: ``RANKS`` ranks sharing the node's busy
    CPU time so far (``busy_cs``, user 97 % / system 3 %) and the batch script.
    Deterministic (no random draw), so the demo's other data is unchanged."""
    base = 20000 + 16 * index  # pids distinct per job
    rows = {}
    for r in range(RANKS):
        share = busy_cs // RANKS + (busy_cs % RANKS if r == 0 else 0)
        system = share * 3 // 100
        rows[procexe_device(base + r + 1, APP_EXES[app].encode())] = (share - system, system)
    rows[procexe_device(base, JOB_SCRIPT.encode())] = (SCRIPT_CS * elapsed, 0)
    return rows


@dataclass(frozen=True)
class DemoMessage:
    """One message as a node's monitor would publish it."""

    host: str
    time: float
    text: str
    sample_count: int = 1


def _col(schema, name: str) -> int:
    return schema.names.index(name)


@dataclass
class _Grid:
    """Per (sample, host): which profile runs, which job is on the node, marks."""

    sample_prof: np.ndarray  # profile whose gauges the sample shows
    interval_prof: np.ndarray  # profile running in (t[k-1], t[k]]
    job: np.ndarray  # job index on the node at sample k, -1 none
    begin: np.ndarray  # job index beginning at sample k, -1 none
    end: np.ndarray  # job index ending at sample k, -1 none


@dataclass
class _Profiles:
    """Per-profile rates; profile 0 is a node without a job."""

    busy_ticks: np.ndarray  # busy centiseconds per interval, all CPUs
    busy: np.ndarray  # busy cores
    proc_kb: np.ndarray  # process memory, KiB
    cache_kb: np.ndarray
    net: np.ndarray  # bytes/s rx+tx without lo
    lo: np.ndarray  # bytes/s rx (= tx) on lo
    read: np.ndarray  # disk bytes/s
    write: np.ndarray


def _profiles(cfg: DemoConfig, plan: DemoPlan) -> tuple[_Profiles, dict[tuple[int, str], int]]:
    busy, mem, net = [0.0], [idle_mem_bytes(cfg)], [BACKGROUND_NET]
    index: dict[tuple[int, str], int] = {}
    for j, job in enumerate(plan.jobs):
        for h in job.hosts:
            index[(j, h)] = len(busy)
            busy.append(job.busy_cores[h])
            mem.append(job.mem_used_bytes[h])
            net.append(job.net_bytes_per_s[h])
    b = np.array(busy)
    node_kb = cfg.mem_per_node_bytes // 1024
    share = np.full(len(busy), CACHE_SHARE_JOB)
    share[0] = CACHE_SHARE_IDLE
    frac = b / cfg.cpus_per_node
    return (
        _Profiles(
            busy_ticks=np.rint(b * cfg.interval * 100).astype(np.int64),
            busy=b,
            proc_kb=np.array(mem, dtype=np.int64) // 1024,
            cache_kb=(share * node_kb).astype(np.int64) // cfg.numa_nodes * cfg.numa_nodes,
            net=np.array(net),
            lo=1000.0 + 1e5 * b,
            read=4096.0 + 2e6 * frac,
            write=20480.0 + 1e6 * frac,
        ),
        index,
    )


def _grid(cfg: DemoConfig, plan: DemoPlan, index: dict[tuple[int, str], int]) -> _Grid:
    n, hosts = cfg.samples, {h: i for i, h in enumerate(plan.hosts)}
    shape = (n, len(hosts))
    g = _Grid(*(np.full(shape, fill, dtype=np.int32) for fill in (0, 0, -1, -1, -1)))
    for j, job in enumerate(plan.jobs):
        ks = round((job.start - cfg.start).total_seconds()) // cfg.interval
        ke = n if job.end is None else round((job.end - cfg.start).total_seconds()) // cfg.interval
        last = min(ke, n - 1)
        for h in job.hosts:
            col, p = hosts[h], index[(j, h)]
            g.sample_prof[ks : last + 1, col] = p
            g.interval_prof[ks + 1 : last + 1, col] = p
            g.job[ks : last + 1, col] = j
            g.begin[ks, col] = j
            if ke < n:
                g.end[ke, col] = j
    return g


def _deltas(cfg: DemoConfig, p: _Profiles) -> dict[str, np.ndarray]:
    """Per-profile increments of the counters that carry no noise."""
    iv, m = cfg.interval, cfg.numa_nodes
    block = np.zeros((len(p.busy), len(schemas.BLOCK.events)), dtype=np.int64)
    rd_ios = (p.read * iv // 65536 + 1).astype(np.int64)
    wr_ios = (p.write * iv // 131072 + 1).astype(np.int64)
    rd_ticks, wr_ticks = rd_ios // 4 + 1, wr_ios // 2 + 1
    for name, values in (
        ("rd_ios", rd_ios), ("rd_merges", rd_ios // 10), ("rd_sectors", (p.read * iv) // 512),
        ("rd_ticks", rd_ticks), ("wr_ios", wr_ios), ("wr_merges", wr_ios // 5),
        ("wr_sectors", (p.write * iv) // 512), ("wr_ticks", wr_ticks),
        ("io_ticks", (rd_ticks + wr_ticks) * 4 // 5), ("time_in_queue", rd_ticks + wr_ticks),
    ):  # fmt: skip
        block[:, _col(schemas.BLOCK, name)] = values
    hit = ((p.busy + 0.2) * iv * 3000 / m).astype(np.int64)
    numa = np.zeros((len(p.busy), len(schemas.NUMA.events)), dtype=np.int64)
    for name, values in (("numa_hit", hit), ("numa_miss", hit // 200), ("numa_foreign", hit // 200),
                         ("local_node", hit - hit // 200), ("other_node", hit // 200)):  # fmt: skip
        numa[:, _col(schemas.NUMA, name)] = values
    vm = np.zeros((len(p.busy), len(schemas.VM.events)), dtype=np.int64)
    for name, values in (
        ("pgpgin", p.read * iv // 1024), ("pgpgout", p.write * iv // 1024),
        ("pgfault", (p.busy * 3000 + 100) * iv), ("pgmajfault", p.busy * 0 + 1),
    ):  # fmt: skip
        vm[:, _col(schemas.VM, name)] = np.asarray(values, dtype=np.int64)
    ps = np.zeros((len(p.busy), len(schemas.PS.events)), dtype=np.int64)
    ps[:, _col(schemas.PS, "ctxt")] = ((p.busy * 5000 + 300) * iv).astype(np.int64)
    ps[:, _col(schemas.PS, "processes")] = ((p.busy + 1) * iv // 5).astype(np.int64)
    return {"block": block, "numa": numa, "vm": vm, "ps": ps}


class _Cluster:
    """Counter state of every host, advanced one interval at a time."""

    def __init__(self, cfg: DemoConfig, plan: DemoPlan, stream: int = 11) -> None:
        self.cfg, self.plan = cfg, plan
        self.prof, index = _profiles(cfg, plan)
        self.grid = _grid(cfg, plan, index)
        self.delta = _deltas(cfg, self.prof)
        self.rng = np.random.default_rng([cfg.seed, stream])
        h, c, m = len(plan.hosts), cfg.cpus_per_node, cfg.numa_nodes
        start_s = cfg.start.timestamp()
        # boot 2 to 60 days before the range; sub-second phase of each monitor
        self.boot = start_s - np.floor(self.rng.uniform(2, 60, h) * 86400)
        self.offset_us = self.rng.integers(50_000, 950_000, h)
        up = (start_s - self.boot)[:, None]  # (h, 1) seconds since boot

        self.cpu = np.zeros((h, c, 7), dtype=np.int64)
        total = np.broadcast_to(up * 100, (h, c)).astype(np.int64)
        shares = (0.25, 0.001, 0.02, None, 0.001, 0.0005, 0.001)
        for i, share in enumerate(shares):
            if share is not None:
                jitter = self.rng.uniform(0.8, 1.2, (h, c))
                self.cpu[:, :, i] = (total * share * jitter).astype(np.int64)
        self.cpu[:, :, 3] = total - self.cpu.sum(axis=2)

        self.block = np.zeros((h, len(schemas.BLOCK.events)), dtype=np.int64)
        self.block[:] = (up * self.delta["block"][0] / cfg.interval).astype(np.int64)
        self.numa = np.broadcast_to(
            (up * self.delta["numa"][0] / cfg.interval)[:, None, :].astype(np.int64),
            (h, m, len(schemas.NUMA.events)),
        ).copy()
        self.vm = (up * self.delta["vm"][0] / cfg.interval).astype(np.int64)
        self.ps = (up * self.delta["ps"][0] / cfg.interval).astype(np.int64)
        self.net = np.zeros((h, len(NET_DEVICES), len(schemas.NET.events)), dtype=np.int64)
        self._advance_net(np.zeros(h, dtype=np.int64), up[:, 0])
        self._history_ib(up[:, 0])
        self._wrap_rd_ticks()

    def _history_ib(self, up: np.ndarray) -> None:
        """IPoIB traffic of the jobs before the range (~0.5 MB/s on average)."""
        ev = schemas.NET.names
        for name, rate in (("rx_bytes", 2.5e5), ("tx_bytes", 2.5e5), ("rx_packets", 60.0),
                           ("tx_packets", 60.0)):  # fmt: skip
            self.net[:, 2, ev.index(name)] += (up * rate).astype(np.int64)

    def _wrap_rd_ticks(self) -> None:
        """Start the wrap host's rd_ticks so it passes 2^32 half-way through."""
        if self.plan.wrap_host not in self.plan.hosts:
            return
        w = self.plan.hosts.index(self.plan.wrap_host)
        col = _col(schemas.BLOCK, "rd_ticks")
        growth = int(self.delta["block"][self.grid.interval_prof[1:, w], col].sum())
        self.block[w, col] = WRAP - max(1, growth // 2)

    def _advance_net(self, prof: np.ndarray, seconds: np.ndarray) -> None:
        """Add ``seconds`` of profile ``prof`` traffic, with ±0.4 % noise, to net."""
        ev = schemas.NET.names
        rx, tx = ev.index("rx_bytes"), ev.index("tx_bytes")
        rxp, txp, mc = ev.index("rx_packets"), ev.index("tx_packets"), ev.index("multicast")
        noise = 1 + 0.008 * (self.rng.random(len(prof)) - 0.5)
        total = np.rint(self.prof.net[prof] * seconds * noise).astype(np.int64)
        background = np.rint(BACKGROUND_NET * seconds * noise).astype(np.int64)
        ib = ((total - background) * IB_SHARE).astype(np.int64)
        eth = total - ib
        lo = (self.prof.lo[prof] * seconds).astype(np.int64)
        for d, (nbytes, per_packet) in enumerate(((lo * 2, 2000), (eth, 900), (ib, 4096))):
            r = nbytes * 11 // 20
            self.net[:, d, rx] += r
            self.net[:, d, tx] += nbytes - r
            self.net[:, d, rxp] += r // per_packet + (r > 0)
            self.net[:, d, txp] += (nbytes - r) // per_packet + (nbytes > r)
        self.net[:, 1, mc] += (seconds // 30).astype(np.int64)

    def advance(self, k: int) -> None:
        """Counters from sample k-1 to sample k."""
        ip = self.grid.interval_prof[k]
        f = self.cfg.interval * 100
        c = self.cfg.cpus_per_node
        busy = np.clip(self.prof.busy_ticks[ip][:, None] - np.arange(c) * f, 0, f)
        system = (busy * self.rng.uniform(0.02, 0.04, busy.shape)).astype(np.int64)
        irq, softirq = busy // 500, busy // 200
        rest = f - busy
        iowait = (rest * self.rng.uniform(0, 0.004, busy.shape)).astype(np.int64)
        self.cpu += np.stack(
            [busy - system - irq - softirq, busy * 0, system, rest - iowait, iowait, irq, softirq],
            axis=2,
        )
        self.block += self.delta["block"][ip]
        self.numa += self.delta["numa"][ip][:, None, :]
        self.vm += self.delta["vm"][ip]
        self.ps += self.delta["ps"][ip]
        self._advance_net(ip, np.full(len(ip), float(self.cfg.interval)))

    def gauges(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """mem rows (h, numa, events) and ps gauges (h, 5) at sample k."""
        sp = self.grid.sample_prof[k]
        h, m = len(sp), self.cfg.numa_nodes
        ev = schemas.MEM.names
        mem = np.zeros((h, m, len(ev)), dtype=np.int64)
        proc = self.prof.proc_kb[sp][:, None] // m + np.zeros((h, m), dtype=np.int64)
        proc[:, 0] += self.prof.proc_kb[sp] - proc.sum(axis=1)
        proc = (proc * (1 + 0.002 * (self.rng.random((h, m)) - 0.5))).astype(np.int64)
        total = self.cfg.mem_per_node_bytes // 1024 // m
        file_pages = (self.prof.cache_kb[sp] // m)[:, None] * (1 + 0.01 * self.rng.random((h, m)))
        file_pages = file_pages.astype(np.int64)
        slab = np.int64(self.cfg.mem_per_node_bytes * SLAB_SHARE / 1024 / m)
        page_tables = proc // 400
        anon = proc - page_tables
        used = anon + page_tables + file_pages + slab  # MemUsed - FilePages - Slab = proc
        active = (anon + file_pages) * 3 // 5
        for name, values in (
            ("MemTotal", total), ("MemFree", total - used), ("MemUsed", used),
            ("Active", active), ("Inactive", anon + file_pages - active),
            ("Dirty", self.rng.integers(0, 400, (h, m))), ("FilePages", file_pages),
            ("Mapped", file_pages // 4), ("AnonPages", anon), ("PageTables", page_tables),
            ("Slab", slab), ("AnonHugePages", anon // 2 // 2048 * 2048),
        ):  # fmt: skip
            mem[:, :, ev.index(name)] = values
        b = self.prof.busy[sp]
        load = b[:, None] * 100 * (1 + 0.02 * (self.rng.random((h, 3)) - 0.5))
        running = np.ceil(b).astype(np.int64) + 1
        threads = 480 + 4 * np.ceil(b).astype(np.int64)
        return mem, np.column_stack([np.rint(load).astype(np.int64), running, threads])


#: what a fixture-shaped node has besides the demo node's devices
EXTRA_DISKS = ("nvme1n1", "nvme2n1", "nvme3n1", "nvme4n1", "nvme5n1")
EXTRA_NICS = ("eno16905np1", "idrac", "ibp202s0")
IB_PORT = "mlx5_0.1"
LUSTRE = ("scratch-ffff8b2c", "work-ffff8b2d")
TMPFS_MOUNTS = ("/dev/shm", "/run", "/tmp")
DAEMONS = ("systemd", "sshd", "slurmd", "munged", "nslcd", "chronyd", "rsyslogd", "crond",
           "dbus-daemon", "lnet", "ptlrpcd", "ldlm_bl", "ll_ping", "kworker", "irqbalance",
           "tuned", "polkitd", "gssproxy", "auditd", "sssd", "agetty", "systemd-udevd",
           "systemd-journal", "systemd-logind", "lvmetad", "ibacm", "opensm", "rdma-ndd",
           "node_exporter", "ipmi", "xinetd", "hpcperf-monitor", "atd", "mcelog", "smartd",
           "lldpad")
JOB_PROCS = 6  # processes of the job on a busy node (an MPI rank per NUMA pair, srun...)


class _FixtureParts:
    """The rows a fixture-shaped node has that a demo node has not: idle disks
    and interfaces, the InfiniBand port under IPoIB, Lustre, tmpfs, vfs,
    System V shared memory and processes. Their own random stream, so the
    demo node's counters (and the tests' expectations) do not move; the job's
    traffic is on ib0 already, so host totals keep the plan's ground truth
    (idle disks and interfaces do not count)."""

    def __init__(self, cfg: DemoConfig, state: _Cluster) -> None:
        self.state = state
        rng = np.random.default_rng([cfg.seed, 17])
        h, iv = len(state.plan.hosts), cfg.interval
        self.disks = rng.integers(100, 10**6, (h, len(EXTRA_DISKS), len(schemas.BLOCK.events)))
        self.disks[:, :, _col(schemas.BLOCK, "in_flight")] = 0
        self.nics = np.zeros((h, len(EXTRA_NICS), len(schemas.NET.events)), dtype=np.int64)
        self.nics[:, 1, _col(schemas.NET, "rx_bytes")] = rng.integers(10**5, 10**7, h)
        self.llite = rng.integers(10**6, 10**12, (h, len(LUSTRE), len(schemas.LLITE.events)))
        self.llite_step = llite_steps(state.prof, iv)
        self.tmpfs = rng.integers(0, 10**8, (h, len(TMPFS_MOUNTS), 2))
        self.vfs = rng.integers(10**4, 10**6, (h, 3))
        self.shm = rng.integers(0, 10**6, (h, 2))
        self.daemons = rng.integers(1, 10**6, (h, len(DAEMONS), len(schemas.PROC.events)))
        self.pids = rng.integers(1000, 4 * 10**6, (h, len(DAEMONS) + JOB_PROCS))
        self.cpus = f"0-{cfg.cpus_per_node - 1}/0-{cfg.numa_nodes - 1}"

    def advance(self, k: int) -> None:
        self.llite += self.llite_step[self.state.grid.interval_prof[k]][:, None, :]

    def rows(self, k: int) -> list[dict[str, dict[str, list[int]]]]:
        """Per host, the extra rows of sample k (types the demo node lacks, and
        the extra devices of its block and net)."""
        st = self.state
        ib = ib_port_rows(st.net)
        sp = st.grid.sample_prof[k]
        job_kb = st.prof.proc_kb[sp] // JOB_PROCS
        busy = st.prof.busy[sp]
        disks, nics, llite = self.disks.tolist(), self.nics.tolist(), self.llite.tolist()
        ib_l, tmpfs = ib.tolist(), self.tmpfs.tolist()
        vfs, shm = self.vfs.tolist(), self.shm.tolist()
        daemons, pids = self.daemons.tolist(), self.pids.tolist()
        out = []
        for i in range(len(sp)):
            procs = {f"{name}/{pids[i][d]}/{self.cpus}": daemons[i][d]
                     for d, name in enumerate(DAEMONS)}
            if busy[i] > 0:
                kb = int(job_kb[i])
                for j in range(JOB_PROCS):
                    procs[f"app/{pids[i][len(DAEMONS) + j]}/{self.cpus}"] = [
                        899638, kb * 2, kb * 2, 0, kb, kb, kb - 4096, 256, 2368, 17746, kb // 500,
                        0, 16]
            out.append({
                "block": dict(zip(EXTRA_DISKS, disks[i], strict=True)),
                "net": dict(zip(EXTRA_NICS, nics[i], strict=True)),
                "ib_ext": {IB_PORT: ib_l[i]},
                "llite": dict(zip(LUSTRE, llite[i], strict=True)),
                "proc": procs,
                "sysv_shm": {"-": shm[i]},
                "tmpfs": dict(zip(TMPFS_MOUNTS, tmpfs[i], strict=True)),
                "vfs": {"-": vfs[i]},
            })  # fmt: skip
        return out


def ib_port_rows(net: np.ndarray) -> np.ndarray:
    """``ib_ext`` values (h, 4) of the InfiniBand port under IPoIB ``ib0`` (device 2 of
    ``net``): data in 4-byte words, packets as counted on ib0."""
    ev = schemas.NET.names
    ib0 = net[:, 2, :]
    return np.stack([ib0[:, ev.index("tx_bytes")] // 4, ib0[:, ev.index("rx_bytes")] // 4,
                     ib0[:, ev.index("tx_packets")], ib0[:, ev.index("rx_packets")]], axis=1)


def llite_steps(p: _Profiles, iv: int) -> np.ndarray:
    """Per-profile increments of the ``llite`` counters over one interval."""
    step = np.zeros((len(p.busy), len(schemas.LLITE.events)), dtype=np.int64)
    ev = schemas.LLITE.names
    for name, values in (("read_bytes", 8 * p.read * iv), ("write_bytes", 8 * p.write * iv),
                         ("open", (p.busy + 1) * iv), ("close", (p.busy + 1) * iv),
                         ("getattr", (p.busy * 4 + 2) * iv)):  # fmt: skip
        step[:, ev.index(name)] = np.asarray(values, dtype=np.int64)
    return step


#: the core clock and reference clock of a busy CPU, and instructions per cycle
PERF_CLOCK_HZ, PERF_REF_HZ, PERF_IPC = 2.5e9, 2.1e9, 1.5
#: FLOPs per cycle of a core (AVX-512: two FMA units x 8 doubles x 2) and the node's
#: memory bandwidth (2 sockets x 6 DDR4-3200 channels ~ 0.3 TB/s; 0.2 TB/s sustained)
PERF_FLOPS_PER_CYCLE, PERF_PEAK_MEM_BW = 32, 2e11


def peak_settings(cfg: DemoConfig) -> dict[str, str]:
    """The demo node's peaks as the settings the roofline reads (``hpcperf demo`` sets
    them unless given): 16 cores x 2.5 GHz x 32 = 1.28 TFLOP/s, 200 GB/s."""
    flops = cfg.cpus_per_node * PERF_CLOCK_HZ * PERF_FLOPS_PER_CYCLE
    return {"HPCPERF_NODE_PEAK_FLOPS": f"{flops:.6g}",
            "HPCPERF_NODE_PEAK_MEM_BW": f"{PERF_PEAK_MEM_BW:.6g}"}


#: two memory-controller PMUs per socket (Intel ``uncore_imc_N``), 64-byte CAS each
IMC_PMUS = ("uncore_imc_0", "uncore_imc_1")
CAS = 64


class _PerfParts:
    """The rows of the nodes with hardware counters (:func:`perf_hosts`): ``pmc`` per
    CPU and ``imc`` per controller and socket, counted from 0 when the range starts
    (the monitor's daemon opened its events then), as the monitor writes them; in
    the ``demo`` shape also the InfiniBand port and a Lustre client. No random
    draw: the other hosts' data and every job's CPU, memory and network are as
    before. Ground truth: FLOP/s = busy cores x :func:`perf_per_core`, memory
    bytes/s = busy cores x its bytes + :data:`IDLE_MEM_BW`, 2/3 read."""

    def __init__(self, cfg: DemoConfig, state: _Cluster, plan: DemoPlan) -> None:
        self.state, self.cfg = state, cfg
        self.hosts = perf_hosts(plan)
        self.cols = [plan.hosts.index(h) for h in self.hosts]
        rates = [(0.0, 0.0)] + [perf_per_core(j) for j in plan.jobs for _ in j.hosts]
        self.flops_core = np.array([r[0] for r in rates])  # profile order of _profiles
        self.bytes_core = np.array([r[1] for r in rates])
        h, c = len(self.cols), cfg.cpus_per_node
        self.pmc = np.zeros((h, c, len(schemas.PMC.events)), dtype=np.int64)
        sockets = 2 if cfg.numa_nodes >= 2 else 1  # the demo's nodes: two sockets
        step = c // sockets
        self.imc_devices = [f"{pmu}.{s * step}" for pmu in IMC_PMUS for s in range(sockets)]
        self.imc = np.zeros((h, len(self.imc_devices), 2), dtype=np.int64)
        self.llite = np.zeros((h, len(LUSTRE), len(schemas.LLITE.events)), dtype=np.int64)
        self.llite_step = llite_steps(state.prof, cfg.interval)
        self.cpus = [str(i) for i in range(c)]

    def advance(self, k: int) -> None:
        ip = self.state.grid.interval_prof[k][self.cols]
        iv, c = self.cfg.interval, self.cfg.cpus_per_node
        busy = self.state.prof.busy[ip]
        frac = np.clip(busy[:, None] - np.arange(c), 0.0, 1.0)  # as the cpu rows: low CPUs first
        cycles = np.rint(frac * PERF_CLOCK_HZ * iv).astype(np.int64)
        ev = schemas.PMC.names
        self.pmc[:, :, ev.index("cycles")] += cycles
        self.pmc[:, :, ev.index("instructions")] += np.rint(cycles * PERF_IPC).astype(np.int64)
        self.pmc[:, :, ev.index("ref_cycles")] += np.rint(frac * PERF_REF_HZ * iv).astype(np.int64)
        self.pmc[:, :, ev.index("flops")] += np.rint(
            frac * self.flops_core[ip][:, None] * iv).astype(np.int64)
        node = (busy * self.bytes_core[ip] + IDLE_MEM_BW) * iv  # bytes this interval
        lines = np.rint(node / CAS / len(self.imc_devices)).astype(np.int64)
        read = lines * 2 // 3
        self.imc[:, :, 0] += (read * CAS)[:, None]
        self.imc[:, :, 1] += ((lines - read) * CAS)[:, None]
        self.llite += self.llite_step[ip][:, None, :]

    def rows(self) -> dict[int, dict[str, dict[str, list[int]]]]:
        """Per host column, its extra types at the current sample."""
        pmc, imc = self.pmc.tolist(), self.imc.tolist()
        ib, llite = ib_port_rows(self.state.net[self.cols]).tolist(), self.llite.tolist()
        out = {}
        for i, col in enumerate(self.cols):
            rows: dict[str, dict[str, list[int]]] = {
                "pmc": dict(zip(self.cpus, pmc[i], strict=True)),
                "imc": dict(zip(self.imc_devices, imc[i], strict=True)),
            }
            if self.cfg.shape == "demo":  # the fixture shape has them on every node
                rows["ib_ext"] = {IB_PORT: ib[i]}
                rows["llite"] = dict(zip(LUSTRE, llite[i], strict=True))
            out[col] = rows
        return out


#: the GPUs of the demo's idle node(s): 2 x 80 GiB at rest (60 W, 33 C, 210 MHz)
GPUS = ("0", "1")
GPU_IDLE_MW = round(GPU_IDLE_W * 1000)
#: a busy GPU's temperature and clock
GPU_BUSY_C, GPU_BUSY_MHZ = 71, 1980


class _GpuParts:
    """``nvidia_gpu`` rows, as the monitor writes them: of the nodes no job uses
    (:attr:`DemoPlan.idle_hosts`: two GPUs at rest, so overview and host pages show
    GPU plots) and of the GPU nodes (``gpu``: :data:`GPUS_PER_NODE` GPUs, at rest
    but for those a running job uses, :class:`GpuUse`). No random draw: utilisation,
    memory and power are the plan's ground truth exactly; energy counts power x
    interval (the power of the interval's profile)."""

    def __init__(self, cfg: DemoConfig, state: _Cluster, gpu: bool) -> None:
        plan = state.plan
        self.state, self.interval = state, cfg.interval
        hosts = plan.hosts if gpu else plan.idle_hosts
        self.cols = [plan.hosts.index(h) for h in hosts]
        self.devices = tuple(str(i) for i in range(GPUS_PER_NODE)) if gpu else GPUS
        # per profile (as _profiles numbers them) and device: (util %, bytes, mW)
        rest = [(0, 0, GPU_IDLE_MW)] * len(self.devices)
        self.prof = [rest] + [
            [(u.util_pct, u.mem_bytes, round(u.power_w * 1000)) if (u := job.gpus.get(d))
             else rest[0] for d in self.devices]
            for job in plan.jobs for _ in job.hosts]
        self.energy_mj = {c: [0] * len(self.devices) for c in self.cols}

    def advance(self, k: int) -> None:
        ip = self.state.grid.interval_prof[k]
        for c in self.cols:
            use = self.prof[ip[c]]
            self.energy_mj[c] = [e + mw * self.interval  # mW x s = mJ
                                 for e, (_, _, mw) in zip(self.energy_mj[c], use, strict=True)]

    def rows(self, k: int) -> dict[int, dict[str, dict[str, list[int]]]]:
        sp = self.state.grid.sample_prof[k]
        out = {}
        for c in self.cols:
            use, energy = self.prof[sp[c]], self.energy_mj[c]
            out[c] = {"nvidia_gpu": {
                d: [u, mem, GPU_MEM, mw, e, GPU_BUSY_C if u else 33, GPU_BUSY_MHZ if u else 210]
                for d, (u, mem, mw), e in zip(self.devices, use, energy, strict=True)}}
        return out


def _header(cfg: DemoConfig, host: str, uptime: int) -> Header:
    return Header(
        properties={
            "tacc_stats": schemas.FORMAT_VERSION,
            "hostname": host,
            "uname": UNAME,
            "uptime": str(uptime),
        },
        schemas=dict(schemas.ALL),
    )


class _Part:
    """The hosts of one random stream and the counters of their samples: the CPU
    nodes (the original demo, unchanged by the GPU nodes) or the GPU nodes (a
    stream of their own). Job indices are the plan's (``offset`` + local)."""

    def __init__(self, cfg: DemoConfig, plan: DemoPlan, offset: int, gpu: bool) -> None:
        self.cfg, self.plan, self.offset = cfg, plan, offset
        self.state = _Cluster(cfg, plan, stream=13 if gpu else 11)
        self.fixture = _FixtureParts(cfg, self.state) if cfg.shape == "fixture" else None
        self.perf = _PerfParts(cfg, self.state, plan)
        self.gpus = _GpuParts(cfg, self.state, gpu)
        self.apps = [job_app(j, offset + n) for n, j in enumerate(plan.jobs)]
        self.jobids = [j.jobid for j in plan.jobs]
        self.headers: list[Header | None] = [None] * len(plan.hosts)
        self.last_day = [-1] * len(plan.hosts)
        # per host: the job's busy centiseconds so far and its intervals (procexe rows)
        self.job_cs, self.job_iv = [0] * len(plan.hosts), [0] * len(plan.hosts)

    def advance(self, k: int) -> None:
        state = self.state
        state.advance(k)
        if self.fixture:
            self.fixture.advance(k)
        self.perf.advance(k)
        self.gpus.advance(k)
        for i, p in enumerate(state.grid.interval_prof[k].tolist()):
            self.job_cs[i] += int(state.prof.busy_ticks[p]) if p else 0
            self.job_iv[i] += 1 if p else 0

    def messages(self, k: int) -> Iterator[DemoMessage]:
        cfg, state, grid = self.cfg, self.state, self.state.grid
        cpu_names = [str(i) for i in range(cfg.cpus_per_node)]
        numa_names = [str(i) for i in range(cfg.numa_nodes)]
        w32 = [i for i, e in enumerate(schemas.BLOCK.events) if e.width == 32]
        ps_counters = [i for i, e in enumerate(schemas.PS.events) if e.cumulative]
        start_us = round(cfg.start.timestamp() * 1e6)
        extra = self.fixture.rows(k) if self.fixture else None
        counted = self.perf.rows()
        counted.update(self.gpus.rows(k))
        mem, ps_gauges = state.gauges(k)
        block = state.block.copy()
        block[:, w32] %= WRAP
        ps = np.concatenate([state.ps[:, ps_counters], ps_gauges], axis=1)
        cpu_l, block_l, mem_l = state.cpu.tolist(), block.tolist(), mem.tolist()
        net_l, numa_l, ps_l, vm_l = (
            state.net.tolist(), state.numa.tolist(), ps.tolist(), state.vm.tolist()
        )  # fmt: skip
        stamps = (start_us + k * cfg.interval * 1_000_000 + state.offset_us).tolist()
        job_k, begin_k, end_k = grid.job[k].tolist(), grid.begin[k].tolist(), grid.end[k].tolist()
        for i, host in enumerate(self.plan.hosts):
            us = stamps[i]
            day = us // 86_400_000_000
            fresh = day != self.last_day[i]
            if fresh:
                self.last_day[i] = day
                self.headers[i] = _header(cfg, host, int(us / 1e6 - state.boot[i]))
            marks = [f"seq {k + 1}"]
            if begin_k[i] >= 0:
                marks.append(f"begin {self.jobids[begin_k[i]]}")
                self.job_cs[i] = self.job_iv[i] = 0  # a new job's processes start from nothing
            if end_k[i] >= 0:
                marks.append(f"end {self.jobids[end_k[i]]}")
            j = job_k[i]
            sample = Sample(
                time=us / 1e6,
                jobid=self.jobids[j] if j >= 0 else "-",
                host=host,
                header=self.headers[i],  # type: ignore[arg-type]
                rows={
                    "block": {BLOCK_DEVICE: block_l[i]},
                    "cpu": dict(zip(cpu_names, cpu_l[i], strict=True)),
                    "mem": dict(zip(numa_names, mem_l[i], strict=True)),
                    "net": dict(zip(NET_DEVICES, net_l[i], strict=True)),
                    "numa": dict(zip(numa_names, numa_l[i], strict=True)),
                    "ps": {"-": ps_l[i]},
                    "vm": {"-": vm_l[i]},
                    **({"procexe": procexe_rows(self.apps[j], self.offset + j, self.job_cs[i],
                                                self.job_iv[i])} if j >= 0 else {}),
                },
                marks=marks,
                time_text=f"{us // 1_000_000}.{us % 1_000_000:06d}",
            )
            if extra:
                for type_, devices in extra[i].items():
                    sample.rows[type_] = {**sample.rows.get(type_, {}), **devices}
            for type_, devices in counted.get(i, {}).items():
                sample.rows[type_] = {**sample.rows.get(type_, {}), **devices}
            text = write_sample(sample)
            if fresh:
                text = write_header(self.headers[i]) + "\n" + text  # type: ignore[arg-type]
            yield DemoMessage(host=host, time=us / 1e6, text=text, sample_count=1)


def _parts(cfg: DemoConfig, plan: DemoPlan) -> list[_Part]:
    """The CPU nodes' part and, if the config has GPU nodes, theirs: each a plan of
    its own hosts and jobs, so adding GPU nodes leaves the CPU nodes' bytes as they were."""
    gpu_hosts = set(cfg.gpu_hosts())
    cpu_jobs = tuple(j for j in plan.jobs if not gpu_hosts & set(j.hosts))
    cpu = DemoPlan(cfg, tuple(h for h in plan.hosts if h not in gpu_hosts), cpu_jobs,
                   plan.wrap_host)
    parts = [_Part(replace(cfg, gpu_nodes=0), cpu, 0, gpu=False)]
    if gpu_hosts:
        gpu = DemoPlan(cfg, tuple(h for h in plan.hosts if h in gpu_hosts),
                       plan.jobs[len(cpu_jobs):], plan.wrap_host)
        parts.append(_Part(replace(cfg, nodes=cfg.gpu_nodes, gpu_nodes=0), gpu,
                           len(cpu_jobs), gpu=True))
    return parts


def iter_messages(cfg: DemoConfig, plan: DemoPlan | None = None) -> Iterator[DemoMessage]:
    """Every host's samples, in time order (all hosts at t, then t+interval...).

    Each message is one sample; a host's first message and its first after
    each UTC midnight start with a header (daily rotation).
    """
    parts = _parts(cfg, plan or make_plan(cfg))
    for k in range(cfg.samples):
        for part in parts:
            if k:
                part.advance(k)
            yield from part.messages(k)


def _accounting_row(job: DemoJob) -> dict[str, object]:
    node_mib = job.req_mem_bytes // job.nnodes // 2**20
    state = "CANCELLED by 20113" if job.state == "CANCELLED" else job.state
    # as sacct lists a typed GPU request: the typed count, then the untyped total
    gres = f"gres/gpu:h100={job.ngpus},gres/gpu={job.ngpus}," if job.ngpus else ""
    return {
        "JobID": job.jobid, "JobIDRaw": job.jobid, "User": job.user, "Account": job.account,
        "Partition": job.partition, "QOS": job.qos, "JobName": job.jobname, "State": state,
        "ExitCode": job.exit_code, "Submit": job.submit, "Start": job.start, "End": job.end,
        "Elapsed": format_duration(job.elapsed_s), "Timelimit": format_duration(job.timelimit_s),
        "NNodes": job.nnodes, "NCPUS": job.ncpus, "ReqMem": f"{node_mib}M",
        "AllocTRES": f"billing={job.ncpus},cpu={job.ncpus},{gres}"
                     f"mem={node_mib * job.nnodes}M,node={job.nnodes}",
        "NodeList": list(job.hosts),
    }  # fmt: skip


def accounting_days(cfg: DemoConfig) -> list[date]:
    """UTC days the range's samples fall on, one dump file each."""
    first = cfg.start.astimezone(UTC).date()
    last = cfg.time_at(cfg.samples - 1).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def accounting_files(cfg: DemoConfig, plan: DemoPlan | None = None) -> dict[str, str]:
    """``{"YYYY-MM-DD": dump}``: each day lists the jobs that ended that day.

    Jobs still running at the range's end are in the last day's file as
    RUNNING with End ``Unknown``, as a dump taken then would show them.
    """
    plan = plan or make_plan(cfg)
    days = accounting_days(cfg)
    by_day: dict[date, list[DemoJob]] = {d: [] for d in days}
    for job in plan.jobs:
        day = days[-1] if job.end is None else job.end.astimezone(UTC).date()
        by_day[day].append(job)
    far = datetime.max.replace(tzinfo=UTC)
    return {
        d.isoformat(): format_accounting(
            _accounting_row(j)
            for j in sorted(jobs, key=lambda j: (j.end or far, int(j.jobid)))
        )
        for d, jobs in by_day.items()
    }


#: what each demo application's job script runs (after ``module load <app>``)
APP_COMMANDS = {
    "lammps": "srun lmp_mpi -in in.lj", "wrf": "srun wrf.exe",
    "gromacs": "srun gmx_mpi mdrun -deffnm md", "namd": "srun namd3 +ppn 4 apoa1.namd",
    "vasp": "srun vasp_std", "openfoam": "srun simpleFoam -parallel",
    "python": "srun python3 train.py --epochs 90 --batch-size 256",
    "cp2k": "srun cp2k.psmp -i H2O-64.inp",
}  # fmt: skip


def job_script(job: DemoJob, index: int) -> str:
    """The batch script a demo job was submitted with: ``#SBATCH`` lines of what the
    accounting records (nodes, tasks, memory, time, GPUs), a module and a command."""
    app = job_app(job, index)
    node_mib = job.req_mem_bytes // job.nnodes // 2**20
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job.jobname}",
             f"#SBATCH --account={job.account}", f"#SBATCH --partition={job.partition}",
             f"#SBATCH --nodes={job.nnodes}",
             f"#SBATCH --ntasks-per-node={job.ncpus // job.nnodes}",
             f"#SBATCH --mem={node_mib}M", f"#SBATCH --time={format_duration(job.timelimit_s)}"]
    if job.ngpus:
        lines.append(f"#SBATCH --gres=gpu:h100:{job.ngpus // job.nnodes}")
    lines += ["", "module purge", f"module load {app}", APP_COMMANDS[app]]
    return "\n".join(lines) + "\n"


def script_files(cfg: DemoConfig, plan: DemoPlan | None = None) -> dict[str, str]:
    """``{"YYYY-MM-DD": scripts file}``: the scripts of the jobs that ended that day, as
    ``hpcperf-sacct-dump --scripts`` writes them beside each accounting dump (a job
    still running has none yet)."""
    plan = plan or make_plan(cfg)
    by_day: dict[str, dict[str, bytes]] = {d.isoformat(): {} for d in accounting_days(cfg)}
    for index, job in enumerate(plan.jobs):
        if job.end is not None:
            day = job.end.astimezone(UTC).date().isoformat()
            by_day[day][job.jobid] = job_script(job, index).encode()
    return {day: format_scripts(scripts) for day, scripts in by_day.items()}


def expected_messages(cfg: DemoConfig) -> int:
    """How many messages :func:`iter_messages` yields (hosts x samples)."""
    return cfg.all_nodes * cfg.samples



def clone_hosts(archive: Path, copies: int) -> list[str]:
    """Copy every host of an archive ``copies`` times under new names: fast test
    and benchmark data of many hosts (a demo archive is slow to drain).

    A copy of ``c001-002`` is ``d001-002``, ``e001-002``...: the same length,
    so the archive index's byte offsets hold for the copy unchanged. Returns
    the new host names.
    """
    if not 1 <= copies <= 22:
        raise ValueError("copies: 1 to 22 (one letter after c each)")
    made = []
    for src in sorted(p for p in archive.iterdir() if p.is_dir() and p.name.startswith("c")):
        old = src.name.encode()
        for k in range(copies):
            name = chr(ord("d") + k) + src.name[1:]
            dst = archive / name
            dst.mkdir()
            for f in src.iterdir():
                data = f.read_bytes()
                (dst / f.name).write_bytes(
                    data if f.name.endswith(".idx") else data.replace(old, name.encode()))
            made.append(name)
    return made
