"""The overview's cluster series over a long range: raw ``host_data`` vs ``cluster_agg``.

``python -m benchmarks.overview_range [--hosts H] [--days D] [--repeat R]``

Starts a dedicated embedded PostgreSQL in a temporary directory, loads H
hosts x D days of five-minute samples (cpu 7 events, mem 4, net 2, plus an
``ib_ext`` type for the "every type" plots) with binary ``COPY``, refreshes
the aggregates as the pipeline does (timed), then times, after one warm-up,
the overview's two reads for the whole range: the named series and the extra
types, before (``timeseries.series``/``extra_types`` over every host's rows)
and after (``long_range.cluster_series``/``cluster_extra``). Medians of R.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from hpcperfstats.config import cluster_name
from hpcperfstats.db import embedded
from hpcperfstats.db.schema import ensure_schema
from hpcperfstats.hostdata.aggregates import refresh

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
EVENTS = [("cpu", "s/s", e) for e in ("user", "nice", "system", "idle", "iowait", "irq",
                                      "softirq")] + \
         [("mem", "B", e) for e in ("MemUsed", "MemTotal", "FilePages", "Slab")] + \
         [("net", "B/s", e) for e in ("rx_bytes", "tx_bytes")] + \
         [("ib_ext", "B/s", e) for e in ("port_xmit_data", "port_rcv_data")]


def load(conn: psycopg.Connection, hosts: int, days: int) -> int:
    rows = 0
    with conn.cursor() as cur, cur.copy(
            "COPY host_data (cluster, time, host, type, device, event, unit, value)"
            " FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "timestamptz", "text", "text", "text", "text", "text",
                        "float8"])
        cluster = cluster_name()
        for k in range(days * 288):
            t = T0 + STEP * k
            for h in range(hosts):
                for i, (type_, unit, event) in enumerate(EVENTS):
                    copy.write_row((cluster, t, f"c{h:04d}", type_, "", event, unit,
                                    float((k + h + i) % 97)))
                    rows += 1
    return rows


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def run(url: str, args: argparse.Namespace) -> None:
    from dashboards import long_range, timeseries

    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        t = time.perf_counter()
        rows = load(conn, args.hosts, args.days)
        conn.commit()
        loaded = time.perf_counter() - t
        t = time.perf_counter()
        for d in range(args.days):  # day by day, as hourly partitions would
            refresh(conn, T0 + timedelta(days=d), T0 + timedelta(days=d + 1))
        refreshed = time.perf_counter() - t
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    start, end = T0, T0 + timedelta(days=args.days)
    with psycopg.connect(url) as conn:
        hosts = [f"c{h:04d}" for h in range(args.hosts)]
        names = timeseries.PLOTTED_SERIES

        def raw():
            timeseries.series(conn, hosts, start, end, names, 200)
            timeseries.extra_types(conn, hosts, start, end, 200)

        def agg():
            long_range.cluster_series(conn, start, end, names, 200)
            long_range.cluster_extra(conn, start, end, 200)

        before, after = timed(raw, args.repeat), timed(agg, args.repeat)
        agg_rows = conn.execute("SELECT (SELECT count(*) FROM host_agg),"
                                " (SELECT count(*) FROM cluster_agg)").fetchone()
    print(f"{rows:,} host_data rows ({args.hosts} hosts x {args.days} d, 5 min) loaded in "
          f"{loaded:.1f} s; aggregates refreshed in {refreshed:.1f} s "
          f"({agg_rows[0]:,} host_agg, {agg_rows[1]:,} cluster_agg rows)")
    print(f"overview, {args.days} d range, series + extra types: raw host_data "
          f"{before * 1000:.0f} ms, cluster_agg {after * 1000:.1f} ms "
          f"({before / after:.0f}x), median of {args.repeat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcperf-bench-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        with embedded.running(pgdata) as url:
            run(url, args)


if __name__ == "__main__":
    main()
