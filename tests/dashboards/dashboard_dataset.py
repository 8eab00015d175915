"""The dashboards' test data set: a small realistic cluster.

Two jobs on two hosts with twelve five-minute samples each; one job's name is
a script tag, to prove that database text is shown as text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

GIB = 2**30
HOSTS = ["c001", "c002"]
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
]

METRICS = [
    ("1001", "cpu_cores_avg", 24.5, "cores", None),
    ("1001", "cpu_efficiency", 0.766, "1", None),
    ("1001", "mem_hwm_bytes", 41.5 * GIB, "B", None),
    ("1001", "net_bw_avg", 125e6, "B/s", None),
    ("1002", "cpu_cores_avg", 1.2, "cores", None),
    ("1002", "cpu_efficiency", None, "1", "job too short"),
    ("1002", "mem_hwm_bytes", 3.2 * GIB, "B", None),
]


def host_rows() -> list[tuple]:
    """cpu (s/s), mem (B) and net (B/s) rows as the pipeline writes them."""
    rows = []
    for job in JOBS:
        jobid, start, hosts = job[0], job[6], job[11]
        for h, host in enumerate(hosts):
            for i in range(SAMPLES):
                t = start + STEP * i
                busy = 20.0 + 6 * h + (i % 4)  # c002 busier than c001, a gentle wave
                cpu = {"user": busy * 0.8, "nice": 0.0, "system": busy * 0.15,
                       "irq": busy * 0.02, "softirq": busy * 0.03, "idle": 32.0 - busy}
                mem = {"MemUsed": (30 + 2 * i + 5 * h) * GIB, "FilePages": 4 * GIB,
                       "Slab": 1 * GIB}
                net = {"rx_bytes": 60e6 + 1e6 * i, "tx_bytes": 40e6}
                for type_, unit, events in (("cpu", "s/s", cpu), ("mem", "B", mem),
                                            ("net", "B/s", net)):
                    rows += [(t, host, jobid, type_, "", ev, unit, v) for ev, v in events.items()]
    return rows


def load(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE host_data, job_data, job_metrics")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO job_data (jobid, username, account, partition, jobname, state,"
                " start_time, end_time, nnodes, ncpus, req_mem_bytes, hosts, elapsed_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(*j, int((j[7] - j[6]).total_seconds())) for j in JOBS],
            )
            cur.executemany(
                "INSERT INTO job_metrics (jobid, metric, value, unit, reason, day)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(*m, T0.date()) for m in METRICS],
            )
            with cur.copy(
                "COPY host_data (time, host, jobid, type, device, event, unit, value) FROM STDIN"
            ) as copy:
                for row in host_rows():
                    copy.write_row(row)
