"""host_agg / cluster_agg: hand-worked buckets, idempotent refresh, and the
overview's long-range read from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest

from dashboards import long_range
from hpcperfstats.config import cluster_name
from hpcperfstats.hostdata.aggregates import refresh, width_for

T = datetime(2026, 11, 20, 10, tzinfo=UTC)
M = timedelta(minutes=1)

# (minute, host, type, device, event, unit, value)
ROWS = [
    (0, "a", "mem", "", "MemTotal", "B", 10.0),
    (2, "a", "mem", "", "MemTotal", "B", 20.0),
    (5, "a", "mem", "", "MemTotal", "B", 30.0),
    (30, "a", "mem", "", "MemTotal", "B", 40.0),
    (0, "b", "mem", "", "MemTotal", "B", 100.0),
    (0, "a", "xfab", "mlx0", "rx_bytes", "B/s", 4.0),
    (1, "a", "xfab", "mlx0", "rx_bytes", "B/s", 6.0),
    (0, "a", "xfab", "mlx1", "rx_bytes", "B/s", 10.0),
    (0, "a", "gpu", "g0", "util", "%", 50.0),
    (0, "a", "gpu", "g1", "util", "%", 70.0),
    (60, "a", "mem", "", "MemTotal", "B", 999.0),  # the next hour: another partition
]


def load(conn: psycopg.Connection, rows=ROWS) -> None:
    conn.execute("TRUNCATE host_agg, cluster_agg")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO host_data (time, host, type, device, event, unit, value, cluster)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(T + m * M, *rest, cluster_name()) for m, *rest in rows])


def host_agg(conn, width: int) -> dict:
    return {(r[0].astimezone(UTC).strftime("%H:%M"), *r[1:5]): (r[5], r[6]) for r in conn.execute(
        "SELECT bucket, host, type, event, device, value, n FROM host_agg WHERE width_s = %s"
        " AND cluster = %s", (width, cluster_name()))}


def cluster_agg(conn, width: int) -> dict:
    return {(r[0].astimezone(UTC).strftime("%H:%M"), *r[1:4]): (r[4], r[5]) for r in conn.execute(
        "SELECT bucket, type, event, device, value, hosts FROM cluster_agg WHERE width_s = %s"
        " AND cluster = %s", (width, cluster_name()))}


def test_width_for():
    assert width_for(300) == 300 and width_for(7200) == 3600 and width_for(900) == 300
    assert width_for(450) is None and width_for(30) is None


@pytest.mark.integration
def test_buckets_worked_by_hand(pg_url):
    with psycopg.connect(pg_url) as conn:
        load(conn)
        counts = refresh(conn, T, T + 60 * M)
        hour, five = host_agg(conn, 3600), host_agg(conn, 300)
        assert hour[("10:00", "a", "mem", "MemTotal", "")] == (25.0, 4)  # (10+20+30+40)/4
        assert five[("10:00", "a", "mem", "MemTotal", "")] == (15.0, 2)
        assert five[("10:05", "a", "mem", "MemTotal", "")] == (30.0, 1)
        assert five[("10:30", "a", "mem", "MemTotal", "")] == (40.0, 1)
        # rates: per device averaged, then summed; gauges: averaged over devices
        assert five[("10:00", "a", "xfab", "rx_bytes", "*")] == (15.0, 2)  # (4+6)/2 + 10
        assert five[("10:00", "a", "gpu", "util", "*")] == (60.0, 1)
        assert ("10:00", "a", "xfab", "rx_bytes", "") not in five  # no host-wide ib rows
        assert ("11:00", "a", "mem", "MemTotal", "") not in hour  # outside the window
        clus = cluster_agg(conn, 3600)
        assert clus[("10:00", "mem", "MemTotal", "")] == (125.0, 2)  # 25 + 100
        assert cluster_agg(conn, 300)[("10:00", "mem", "MemTotal", "")] == (115.0, 2)
        # a second refresh replaces, never adds
        assert refresh(conn, T, T + 60 * M) == counts
        assert host_agg(conn, 3600) == hour
        # a rebuilt hour (a late sample) changes only its own buckets
        conn.execute("INSERT INTO host_data (time, host, type, device, event, unit, value,"
                     " cluster) VALUES (%s, 'b', 'mem', '', 'MemTotal', 'B', 200, %s)",
                     (T + 40 * M, cluster_name()))
        refresh(conn, T + 30 * M, T + 31 * M)  # widened to the whole hour
        assert host_agg(conn, 3600)[("10:00", "b", "mem", "MemTotal", "")] == (150.0, 2)
        assert cluster_agg(conn, 3600)[("10:00", "mem", "MemTotal", "")] == (175.0, 2)
        # the "every type" plots over an hour bucket, cluster-wide
        extra = long_range.cluster_extra(conn, T, T + timedelta(days=4), 1)
        assert extra.select("type", "event", "value").rows() == [
            ("gpu", "util", 60.0), ("xfab", "rx_bytes", 15.0)]


@pytest.mark.integration
def test_long_range_overview_reads_cluster_agg(pg_url):
    """Four days, hosts a and b every 5 min: the overview's cluster total of
    memory installed from aggregates equals the raw rows' (a: 8, b: 16 -> 24)."""
    days = 4
    rows = [(5 * k, h, "mem", "", "MemTotal", "B", v)
            for k in range(days * 288) for h, v in (("a", 8.0), ("b", 16.0))]
    with psycopg.connect(pg_url) as conn:
        load(conn, rows)
        refresh(conn, T, T + days * 1440 * M)
        start, end = T, T + timedelta(days=days)
        assert long_range.use_aggregates(start, end)
        assert not long_range.use_aggregates(start, start + timedelta(days=1))
        named, hosts = long_range.cluster_series(conn, start, end, ["mem_total"], 200)
        bucket, width = long_range.bucket_and_width(start, end, 200)
        assert (bucket, width) == (1800, 300)  # 4 d / 200 = 1728 s, up to whole 5 min
        one, none = long_range.cluster_series(conn, start, end, ["mem_total"], 200, host="b")
        extra = long_range.cluster_extra(conn, start, end, 200)
    assert set(named["value"].to_list()) == {24.0}
    assert set(hosts["hosts"].to_list()) == {2}
    assert named.height == days * 24 * 3600 // bucket
    assert set(one["value"].to_list()) == {16.0} and set(one["host"].to_list()) == {"b"}
    assert none.is_empty() and extra.is_empty()  # mem is a named series' type


@pytest.mark.integration
def test_host_data_job_refreshes_aggregates(hpcperf_env, pg_url):
    """The pipeline's hourly run loads host_data and then the aggregates: the
    hour's cluster total equals the sum over hosts of each host's mean."""
    from hpcperf_dagster.definitions import defs
    from hpcperfstats.ingest.drain import store_messages

    from .conftest import demo_bodies

    with psycopg.connect(pg_url) as conn:
        conn.execute("TRUNCATE host_agg, cluster_agg")
    store_messages(demo_bodies(nodes=2, hours=1), hpcperf_env / "archive",
                   hpcperf_env / "quarantine")
    result = defs.resolve_job_def("host_data_job").execute_in_process(
        partition_key="2026-11-20-12:00")
    assert result.success
    meta = result.asset_materializations_for_node("host_aggregates")[0].metadata
    assert meta["cluster_agg"].value > 0
    with psycopg.connect(pg_url) as conn:
        expected = dict(conn.execute(
            "SELECT type || '/' || event, sum(v) FROM (SELECT host, type, event, avg(value) v"
            " FROM host_data WHERE device = '' GROUP BY 1, 2, 3) h GROUP BY 1").fetchall())
        got = dict(conn.execute(
            "SELECT type || '/' || event, value FROM cluster_agg"
            " WHERE width_s = 3600 AND device = ''").fetchall())
    assert expected and got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(expected[k], rel=1e-9, abs=1e-9) for k in expected)


@pytest.mark.integration
def test_two_clusters_share_the_tables_without_mixing(pg_url):
    """The same host name on another cluster: its rows are neither read into this
    cluster's buckets nor removed by this cluster's rebuild of the hour."""
    other = "other-" + cluster_name()
    with psycopg.connect(pg_url) as conn:
        load(conn)
        conn.execute("INSERT INTO host_data (time, host, type, device, event, unit, value,"
                     " cluster) VALUES (%s, 'a', 'mem', '', 'MemTotal', 'B', 1000, %s),"
                     " (%s, 'a', 'mem', '', 'MemTotal', 'B', 3000, %s)",
                     (T, other, T + 5 * M, other))
        refresh(conn, T, T + 60 * M)
        refresh(conn, T, T + 60 * M, cluster=other)
        assert host_agg(conn, 3600)[("10:00", "a", "mem", "MemTotal", "")] == (25.0, 4)
        row = conn.execute("SELECT value, n FROM host_agg WHERE cluster = %s AND width_s = 3600",
                           (other,)).fetchall()
        assert row == [(2000.0, 2)]
        refresh(conn, T, T + 60 * M)  # this cluster's rebuild leaves the other's buckets
        assert conn.execute("SELECT count(*) FROM host_agg WHERE cluster = %s",
                            (other,)).fetchone() == (4,)  # 10:00, 10:05 (5 min); 20 min; 1 h
        conn.execute("DELETE FROM host_data WHERE cluster = %s", (other,))
        conn.execute("DELETE FROM host_agg WHERE cluster = %s", (other,))
        conn.execute("DELETE FROM cluster_agg WHERE cluster = %s", (other,))


@pytest.mark.integration
def test_overview_reads_cluster_agg_once_buckets_span_five_minutes(pg_url):
    """A 1000-minute range at 200 points has 300 s buckets: the overview reads
    cluster_agg, and its cluster totals equal the raw read's bucket by bucket.
    By hand: memory used by processes is MemUsed - FilePages - Slab; host a
    alternates 10/20 - 2 - 1 (7, 17), b holds 20 - 4 - 2 = 14: totals 21 and 31.
    Until the aggregates hold the newest sample's bucket, the raw rows are read."""
    from dashboards import timeseries

    minutes = 1000
    rows = [(5 * k, h, "mem", "", ev, "B", v)
            for k in range(minutes // 5)
            for h, evs in (("a", {"MemUsed": 10.0 + 10 * (k % 2), "FilePages": 2.0,
                                  "Slab": 1.0}),
                           ("b", {"MemUsed": 20.0, "FilePages": 4.0, "Slab": 2.0}))
            for ev, v in evs.items()]
    start, end = T, T + minutes * M
    newest = T + (minutes - 5) * M
    with psycopg.connect(pg_url) as conn:
        load(conn, rows)
        assert not long_range.aggregates_serve(conn, start, end, 200, newest)  # not built
        refresh(conn, start, end)
        assert long_range.aggregates_serve(conn, start, end, 200, newest)
        assert not long_range.aggregates_serve(conn, start, start + 600 * M, 200, newest)
        assert long_range.bucket_and_width(start, end, 200) == (300, 300)
        agg, hosts = long_range.cluster_series(conn, start, end, ["mem_used"], 200)
        raw = timeseries.series(conn, ["a", "b"], start, end, ["mem_used"], 200)
    totals = raw.group_by("time").agg(pl.col("value").sum()).sort("time")
    agg = agg.sort("time")
    assert agg["time"].to_list() == totals["time"].to_list()
    assert agg["value"].to_list() == totals["value"].to_list()
    assert agg["value"].to_list()[:4] == [21.0, 31.0, 21.0, 31.0]
    assert set(hosts["hosts"].to_list()) == {2} and agg.height == minutes // 5


def test_plot_buckets_sized_to_the_aggregates():
    """Never more points than asked, at most 1.25 times coarser, read from the widest
    width that allows it: a 128-node job's 48 hours at 144 points (1,198 s asked) read
    whole 20-minute rows; at 200 points (864 s) 15 minutes of 5-minute rows."""
    day = timedelta(days=1)
    assert long_range.bucket_and_width(T, T + 2 * day, 144) == (1200, 1200)
    assert long_range.bucket_and_width(T, T + 2 * day, 200) == (900, 300)
    assert long_range.bucket_and_width(T, T + day, 200) == (600, 300)
    assert long_range.bucket_and_width(T, T + 10 * day, 200) == (4800, 1200)  # 4,320 asked
    assert long_range.bucket_and_width(T, T + 15 * day, 200) == (7200, 3600)  # 6,480 asked
    assert long_range.bucket_and_width(T, T + 60 * M, 200) == (300, 300)  # the finest


@pytest.mark.integration
def test_a_jobs_series_read_aggregated_hours_from_host_agg_the_rest_raw(pg_url):
    """A job on hosts a and b from 10:10 to 13:00 at 9 points: 1,200 s buckets (10,200 s
    / 9 = 1,134 s asked). host_aggregates has built 10:00-12:00 so far; its last hour may
    still be filling, so the 20-minute rows of 10:20 and 10:40 are read from host_agg,
    the partial bucket at 10:00 (samples before the job's start) and 11:00 on from
    host_data. Same numbers as the raw read bucket by bucket. By hand: memory used by
    processes on a is MemUsed - FilePages - Slab = (10 + k) - 2 - 1 at sample k (every 5
    min from 10:00): 10:00 holds k = 2, 3 (9, 10: 9.5), 10:20 k = 4..7 (12.5), ... 13:00
    only k = 36 (43); b holds 20 - 4 - 2 = 14; host c (another job) is not read."""
    from dashboards import timeseries
    from dashboards.long_range import closed_part, hosts_series

    rows = [(5 * k, h, "mem", "", ev, "B", v)
            for k in range(37)
            for h, evs in (("a", {"MemUsed": 10.0 + k, "FilePages": 2.0, "Slab": 1.0}),
                           ("b", {"MemUsed": 20.0, "FilePages": 4.0, "Slab": 2.0}),
                           ("c", {"MemUsed": 1000.0, "FilePages": 0.0, "Slab": 0.0}))
            for ev, v in evs.items()]
    start, end = T + 10 * M, T + 180 * M
    job = {"jobid": "77", "hosts": ["a", "b"], "start_time": start, "end_time": end,
           "cluster": cluster_name()}

    def by_hand(frame: pl.DataFrame, host: str) -> list[float]:
        return frame.filter(pl.col("host") == host).sort("time")["value"].to_list()

    with psycopg.connect(pg_url) as conn:
        load(conn, rows)
        assert closed_part(conn, start, end, 9) is None  # nothing aggregated yet: all raw
        before = timeseries.job_series(conn, job, ["mem_used"], 9)
        refresh(conn, T, T + 120 * M)
        assert closed_part(conn, start, end, 9) == (1200, 1200, T + 20 * M, T + 60 * M)
        mixed = timeseries.job_series(conn, job, ["mem_used"], 9)
        raw = timeseries.derive_series(timeseries.named_rows(
            conn, ["a", "b"], start, end, ["mem_used"], 1200), ["mem_used"])
        conn.commit()
        # the aggregated buckets come from host_agg: gone from host_data, still there
        conn.execute("DELETE FROM host_data WHERE time >= %s AND time < %s",
                     (T + 20 * M, T + 60 * M))
        kept = hosts_series(conn, ["a", "b"], start, end, ["mem_used"], 9)
        conn.rollback()
        refresh(conn, T, T + 185 * M)  # every hour built: up to the job's end
        assert closed_part(conn, start, end, 9) == (1200, 1200, T + 20 * M, T + 180 * M)
        whole = timeseries.job_series(conn, job, ["mem_used"], 9)
    hand_a = [9.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5, 36.5, 40.5, 43.0]
    for frame in (mixed, raw, whole, kept):
        assert by_hand(frame, "a") == hand_a and by_hand(frame, "b") == [14.0] * 10
        assert set(frame["host"].to_list()) == {"a", "b"}
    assert mixed.equals(raw) and whole.equals(raw)
    times = mixed.filter(pl.col("host") == "a")["time"].to_list()
    assert times == [T + 20 * i * M for i in range(10)]
    # before the aggregates, the raw read at its own 1,134 s buckets, as it always was
    steps = before.filter(pl.col("host") == "b")["time"].diff().drop_nulls().unique()
    assert steps.to_list() == [timedelta(seconds=1134)]
    assert set(by_hand(before, "b")) == {14.0}
