"""The dashboards' test data set: a small realistic cluster.

Three users' jobs: alice's two-host job (with coverage, cgroup rows and an
InfiniBand type), bob's one-host job whose name is a script tag (to prove
that database text is shown as text) and which carries a flag, and alice's
wide 20-host job (drawn as a heatmap). Twelve five-minute samples per host.
Each job has its applications (OpenFOAM for alice, Python and an unknown
executable for bob).
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from hpcperfstats.config import cluster_name, env
from hpcperfstats.hostdata.aggregates import refresh
from hpcperfstats.jobs.scripts import format_scripts, load_job_scripts

GIB = 2**30
HOSTS = ["c001", "c002"]
WIDE_HOSTS = [f"w{i:03d}" for i in range(20)]
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
SAMPLES = 12
EVIL_NAME = "<script>alert(1)</script>"

JOBS = [
    # jobid, user, account, partition, name, state, start, end, nnodes, ncpus, mem, hosts
    ("1001", "alice", "proj-cfd", "normal", "cfd-run", "COMPLETED",
     T0, T0 + STEP * (SAMPLES - 1), 2, 64, 128 * GIB, HOSTS),
    ("1002", "bob", "proj-ml", "gpu", EVIL_NAME, "FAILED",
     T0 + STEP * SAMPLES, T0 + STEP * (2 * SAMPLES - 1), 1, 32, 64 * GIB, ["c002"]),
    ("1003", "alice", "proj-cfd", "normal", "wide-sweep", "COMPLETED",
     T0, T0 + STEP * (SAMPLES - 1), 20, 640, 20 * 64 * GIB, WIDE_HOSTS),
]

METRICS = [
    ("1001", "cpu_cores_avg", 24.5, "cores", None, "cgroup"),
    ("1001", "cpu_efficiency", 0.766, "1", None, "cgroup"),
    ("1001", "mem_hwm_bytes", 41.5 * GIB, "B", None, "node"),
    ("1001", "net_bw_avg", 125e6, "B/s", None, "node"),
    ("1002", "cpu_cores_avg", 1.2, "cores", None, "node"),
    ("1002", "cpu_efficiency", None, "1", "job too short", "node"),
    ("1002", "mem_hwm_bytes", 3.2 * GIB, "B", None, "node"),
    ("1003", "cpu_efficiency", 0.31, "1", None, "node"),
]

FLAGS = [
    # jobid, flag, value, threshold, message, advice
    ("1003", "low_cpu_efficiency", 0.31, 0.5,
     "Your job kept 31% of its allocated cores busy (under 50%).", "cores"),
    ("1002", "memory_near_limit", 0.95, 0.9, "Memory <b>reached</b> 95% of a node.", "memory"),
]

APPLICATIONS = [
    # jobid, application, category, known, executable, processes, cpu_s, share, basis
    ("1001", "OpenFOAM", "fluid dynamics", True, "/opt/apps/openfoam11/bin/simpleFoam", 64,
     90000.0, 0.9, "cpu"),
    ("1001", "shell", "launcher", True, "/usr/bin/bash", 1, 10000.0, 0.1, "cpu"),
    ("1002", "Python", "language", True, "/usr/bin/python3.11", 4, 700.0, 0.7, "cpu"),
    ("1002", "unknown", "unknown", False, "/home/bob/bin/train", 1, 300.0, 0.3, "cpu"),
    ("1003", "OpenFOAM", "fluid dynamics", True, "simpleFoam", 640, None, 1.0, "memory"),
]

#: job scripts (``job_scripts``, loaded by the pipeline's loader): bob's is hostile (markup
#: that would close the <pre>, a script tag, formula-looking lines a spreadsheet would run)
HOSTILE_SCRIPT = ("#!/bin/bash\n#SBATCH --job-name=<script>alert(1)</script>\n"
                  "#SBATCH --gres=gpu:1\necho '</pre><img src=x onerror=alert(2)>'\n"
                  "=HYPERLINK(\"http://evil.example\",\"x\")\n+cmd|' /C calc'!A0\n"
                  "\tpython3 train.py  # tab-indented\n")
#: a script that would take over a terminal (``hpcperf job``): clear the screen, set the
#: clipboard (OSC 52), overwrite a line with a carriage return, an 8-bit CSI, DEL. Not
#: loaded: the API test puts it in place of bob's for one request.
TERMINAL_SCRIPT = ("#!/bin/bash\n\x1b[2J\x1b[H#SBATCH --nodes=1\n"
                   "\x1b]52;c;cm0gLXJmIH4K\x07echo hi\n"
                   "rm -rf ~/data\rsafe line\n\x9b31mred\x7f\n")
SCRIPTS = {
    "1001": "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=32\n#SBATCH --mem=64G\n"
            "\nmodule load openfoam\nsrun simpleFoam -parallel\n",
    "1002": HOSTILE_SCRIPT,
}

COVERAGE = [
    # jobid, host, interval_s, expected, present, fraction, gaps
    ("1001", "c001", 300.0, 12, 12, 1.0, []),
    ("1001", "c002", 300.0, 12, 10, 10 / 12, [["2026-03-01T10:20:00Z", "2026-03-01T10:30:00Z"]]),
]


def _samples(jobid: str, start: datetime, hosts: list[str], extra: bool) -> list[tuple]:
    rows = []
    for h, host in enumerate(hosts):
        for i in range(SAMPLES):
            t = start + STEP * i
            busy = 20.0 + 6 * (h % 2) + (i % 4) - (15.0 if host == "w007" else 0.0)
            cpu = {"user": busy * 0.8, "nice": 0.0, "system": busy * 0.15,
                   "irq": busy * 0.02, "softirq": busy * 0.03, "idle": 32.0 - busy}
            mem = {"MemUsed": (30 + 2 * i + 5 * h) * GIB, "FilePages": 4 * GIB,
                   "Slab": 1 * GIB}
            net = {"rx_bytes": 60e6 + 1e6 * i, "tx_bytes": 40e6}
            types = [("cpu", "s/s", "", cpu), ("mem", "B", "", mem), ("net", "B/s", "", net)]
            if extra:
                types += [
                    ("ib_ext", "B/s", "", {"port_xmit_data": 2e8 + 1e7 * i,
                                           "port_rcv_data": 1e8}),
                    ("numa", "1/s", "", {"local_node": 5e5 + 1e4 * i, "other_node": 2e3}),
                    ("cgroup", "s/s", jobid, {"cpu_usage": busy - 1.0}),
                ]
            for type_, unit, device, events in types:
                rows += [(t, host, jobid, type_, device, ev, unit, v) for ev, v in events.items()]
    return rows


def host_rows() -> list[tuple]:
    """host_data rows as the pipeline writes them (rates in /s, gauges as is)."""
    rows = []
    for job in JOBS:
        rows += _samples(job[0], job[6], job[11], extra=job[0] == "1001")
    return rows


def load(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE host_data, job_data, job_metrics, job_flags, job_coverage,"
                     " job_applications, job_scripts")
        cluster = cluster_name()
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
                " start_time, end_time, nnodes, ncpus, req_mem_bytes, hosts, elapsed_s, cluster)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*j, int((j[7] - j[6]).total_seconds()), cluster) for j in JOBS],
            )
            cur.executemany(
                "INSERT INTO job_metrics (jobid, metric, value, unit, reason, source, day,"
                " cluster) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*m, T0.date(), cluster) for m in METRICS],
            )
            cur.executemany(
                "INSERT INTO job_flags (jobid, flag, value, threshold, message, advice,"
                " rule_version, day, cluster) VALUES (%s, %s, %s, %s, %s, %s, 'test', %s, %s)",
                [(*f, T0.date(), cluster) for f in FLAGS],
            )
            cur.executemany(
                "INSERT INTO job_applications (cluster, jobid, application, category, known,"
                " executable, processes, cpu_s, share, basis, rule_version, day)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test', %s)",
                [(env("CLUSTER"), *a, T0.date()) for a in APPLICATIONS],
            )
            cur.executemany(
                "INSERT INTO job_coverage (jobid, host, interval_s, expected, present, fraction,"
                " gaps, day, cluster) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*c[:6], json.dumps(c[6]), T0.date(), cluster) for c in COVERAGE],
            )
            with cur.copy(
                "COPY host_data (time, host, jobid, type, device, event, unit, value, cluster)"
                " FROM STDIN"
            ) as copy:
                for row in host_rows():
                    copy.write_row((*row, cluster))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{T0.date()}.scripts.jsonl"
            path.write_text(format_scripts({j: s.encode() for j, s in SCRIPTS.items()}))
            load_job_scripts(conn, path, T0.date(), cluster, Path(folder) / "quarantine")
        # the pipeline refreshes the aggregates after host_data; long ranges read them
        conn.execute("TRUNCATE host_agg, cluster_agg")
        times = [r[0] for r in host_rows()]
        refresh(conn, min(times), max(times) + STEP)


#: A second cluster in the same database: job ids 1001 and 1002 and hosts c001 and
#: c002 again, other people and other numbers. Alice ran 1002 here (bob's id on the
#: first cluster); carol ran 1001 (alice's id there).
OTHER = "frontera"
T1 = T0 + timedelta(days=1)
OTHER_JOBS = [
    ("1001", "carol", "proj-md", "normal", "md-run", "COMPLETED",
     T1, T1 + STEP * (SAMPLES - 1), 2, 112, 256 * GIB, HOSTS),
    ("1002", "alice", "proj-cfd", "normal", "alice-on-frontera", "COMPLETED",
     T1, T1 + STEP * (SAMPLES - 1), 1, 56, 128 * GIB, ["c001"]),
]
OTHER_METRICS = [
    ("1001", "cpu_efficiency", 0.25, "1", None, "node"),
    ("1002", "cpu_efficiency", 0.9, "1", None, "node"),
]
OTHER_FLAGS = [
    ("1001", "low_cpu_efficiency", 0.25, 0.5,
     "Your job kept 25% of its allocated cores busy (under 50%).", "cores"),
]
OTHER_APPLICATIONS = [
    ("1001", "GROMACS", "molecular dynamics", True, "/opt/apps/gromacs/bin/gmx_mpi", 112,
     300000.0, 1.0, "cpu"),
    ("1002", "LAMMPS", "molecular dynamics", True, "/opt/apps/lammps/bin/lmp", 56,
     150000.0, 1.0, "cpu"),
]


def load_other(url: str, cluster: str = OTHER) -> None:
    """Add the second cluster's rows beside the data set (``load`` first)."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
            " start_time, end_time, nnodes, ncpus, req_mem_bytes, hosts, elapsed_s, cluster)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(*j, int((j[7] - j[6]).total_seconds()), cluster) for j in OTHER_JOBS])
        cur.executemany(
            "INSERT INTO job_metrics (jobid, metric, value, unit, reason, source, day,"
            " cluster) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(*m, T1.date(), cluster) for m in OTHER_METRICS])
        cur.executemany(
            "INSERT INTO job_flags (jobid, flag, value, threshold, message, advice,"
            " rule_version, day, cluster) VALUES (%s, %s, %s, %s, %s, %s, 'test', %s, %s)",
            [(*f, T1.date(), cluster) for f in OTHER_FLAGS])
        cur.executemany(
            "INSERT INTO job_applications (cluster, jobid, application, category, known,"
            " executable, processes, cpu_s, share, basis, rule_version, day)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test', %s)",
            [(cluster, *a, T1.date()) for a in OTHER_APPLICATIONS])
        with cur.copy("COPY host_data (time, host, jobid, type, device, event, unit, value,"
                      " cluster) FROM STDIN") as copy:
            for row in _samples("1001", T1, HOSTS, extra=False):
                copy.write_row((*row, cluster))
