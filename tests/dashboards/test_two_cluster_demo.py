"""``hpcperf demo --clusters 2``: two clusters, two code locations, one Dagster, one site.

The demo cluster twice (the second under ``frontera``, another seed: the same
job ids and host names, another job mix, other values) goes through the real RabbitMQ (a
queue each), Dagster's daemon and webserver (a code location each, from the
same definitions, keys prefixed by the cluster), one database and the
dashboards. Then, on that running instance, ``hpcperf backfill --cluster``
rebuilds two hours of the first cluster's ``host_data`` in full (every row of
those hours deleted and written again), through the webserver as the UI's
backfill does: the other cluster's rows, partition status and
materialisations are exactly as before. Last, the dashboards' selector lists
both and an application summary shows each one's own: screenshots in
``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import DagsterInstance

from hpcperf_dagster.location import asset_key
from hpcperfstats.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SECOND = "frontera"
#: ``--start`` of the demo: hours 12, 13 and 14 of that day
DAY = "2026-11-20"

pytestmark = [pytest.mark.integration, pytest.mark.browser]


class Demo:
    def __init__(self, proc: subprocess.Popen, log: Path, env: dict, first: str, url: str,
                 dagster: str, web: str, home: Path):
        self.proc, self.log, self.env, self.first, self.url = proc, log, env, first, url
        self.dagster, self.web, self.home = dagster, web, home


@pytest.fixture(scope="module")
def two(pg_server: str, rabbit, tmp_path_factory) -> Iterator[Demo]:
    """The two-cluster demo, loaded and serving (its own database, torn down after)."""
    db = f"two_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = urlsplit(pg_server)._replace(path=f"/{db}").geturl()
    folder = tmp_path_factory.mktemp("two-clusters")
    first = f"two{uuid.uuid4().hex[:6]}"
    dagster_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HPCPERF_") and k != "DAGSTER_HOME"}
    env.update(HPCPERF_HOME=str(folder / "home"), HPCPERF_DATABASE_URL=url,
               HPCPERF_AMQP_URL=rabbit.url, HPCPERF_CLUSTER=first,
               HPCPERF_SENSOR_INTERVAL="2", HPCPERF_AUTH="none")
    log = folder / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpcperfstats.cli", "demo", "--clusters", "2",
             "--nodes", "4", "--hours", "3", "--start", f"{DAY}T12:00:00+00:00",
             "--timeout", "900", "--dagster-port", str(dagster_port),
             "--web-port", str(web_port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    demo = Demo(proc, log, env, first, url, f"http://127.0.0.1:{dagster_port}",
                f"http://127.0.0.1:{web_port}", folder / "home")
    try:
        deadline = time.monotonic() + 960
        while "serving; press Ctrl-C" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(2)
        yield demo
    finally:
        running = proc.poll() is None
        if running:
            # SIGTERM, as a process manager stops it (a SIGINT is ignored by a demo
            # started from a background job): the demo stops its servers itself
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_server,
                                                                  autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    if running:  # nothing of the demo's left behind: its Dagster and web ports are closed
        for port in (dagster_port, web_port):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"


def _rows(conn, cluster: str) -> tuple:
    """What a cluster's host_data holds, to the value: rows, hosts, a checksum."""
    return conn.execute(
        "SELECT count(*), count(DISTINCT host), sum(value), "
        "md5(string_agg(host || time::text || type || device || event || value::text, ',' "
        "ORDER BY host, time, type, device, event)) FROM host_data WHERE cluster = %s",
        (cluster,)).fetchone()


def _dagster_state(instance: DagsterInstance, cluster: str) -> dict:
    """A cluster's partition status and every materialisation of its hourly assets."""
    out = {}
    for name in ("raw_stats_archive", "host_data", "host_aggregates"):
        key = asset_key(name, cluster)
        found = instance.fetch_materializations(key, limit=10_000)
        out[name] = (sorted(instance.get_materialized_partitions(key)),
                     sorted((r.storage_id, r.partition_key) for r in found.records))
    return out


def test_two_clusters_load_apart_and_a_backfill_of_one_leaves_the_other(two: Demo,
                                                                        monkeypatch):
    # the demo's clusters file is in force here too (the keys carry the cluster)
    monkeypatch.setenv("HPCPERF_CLUSTERS_FILE", str(two.home / "clusters.yaml"))
    text = two.log.read_text()
    # 4 CPU nodes and the demo's GPU node, 3 hours of 5-minute samples: 5 x 36
    assert "published 180/180 samples to queue" in text
    assert text.count("published 180/180") == 2  # one queue each
    assert f"{two.web}/jobs?cluster={SECOND}" in text
    with psycopg.connect(two.url) as conn:
        jobs = {c: dict(conn.execute(
            "SELECT jobid, jobname || ' ' || username FROM job_data WHERE cluster = %s",
            (c,)).fetchall()) for c in (two.first, SECOND)}
        hosts = {c: {h for h, in conn.execute(
            "SELECT DISTINCT host FROM host_data WHERE cluster = %s", (c,))}
            for c in (two.first, SECOND)}
        # the same ids and host names, another job mix and other values (another seed):
        # what tells them apart is the cluster
        shared = set(jobs[two.first]) & set(jobs[SECOND])
        assert len(shared) >= 3
        assert any(jobs[two.first][j] != jobs[SECOND][j] for j in shared)
        assert hosts[two.first] == hosts[SECOND] and len(hosts[SECOND]) == 5
        before_rows = _rows(conn, SECOND)
        first_rows = _rows(conn, two.first)
    assert before_rows[0] > 0 and before_rows[2:] != first_rows[2:]

    dagster_home = two.home / "dagster"
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        before = _dagster_state(instance, SECOND)
        first_before = _dagster_state(instance, two.first)
    assert len(before["host_data"][0]) == 3  # hours 12, 13, 14 of each cluster
    assert len(first_before["host_data"][0]) == 3

    out = subprocess.run(
        [sys.executable, "-m", "hpcperfstats.cli", "backfill", "host_data",
         f"{DAY}T12", f"{DAY}T13", "--cluster", two.first, "--full", "--wait",
         "--url", two.dagster, "--timeout", "600"],
        env=dict(two.env, HPCPERF_CLUSTERS_FILE=str(two.home / "clusters.yaml"),
                 HPCPERF_PARTITION_START=DAY),
        capture_output=True, text=True, timeout=700, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    prefix = two.first
    assert f"{prefix}/host_data 2/2 done" in out.stdout, out.stdout

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        after = _dagster_state(instance, SECOND)
        first_after = _dagster_state(instance, two.first)
    # the other cluster: not one materialisation more, the same partitions
    assert after == before
    # this one: both hours (and their aggregates) rebuilt by the backfill's runs, not 14
    new = sorted(set(first_after["host_data"][1]) - set(first_before["host_data"][1]))
    assert [p for _, p in new] == [f"{DAY}-12:00", f"{DAY}-13:00"]
    with psycopg.connect(two.url) as conn:
        assert _rows(conn, SECOND) == before_rows  # every row of the same hosts and hours
        assert _rows(conn, two.first) == first_rows  # rebuilt in full: the same rows again


def test_the_selector_and_an_application_summary_of_each_cluster(two: Demo, browser,
                                                                  screenshots):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{two.web}/jobs", timeout=120_000)
        select = page.locator(".hp-cluster select")
        select.wait_for(timeout=120_000)
        options = select.locator("option").all_inner_texts()
        assert options == [two.first, SECOND]
        page.locator(".tabulator .tabulator-row").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(screenshots / "two-clusters-jobs-first.png"), full_page=True)
        # a closed <select> shows one name: shown open, as a list, for the picture
        select.evaluate("el => { el.size = el.options.length; }")
        page.screenshot(path=str(screenshots / "two-clusters-selector.png"),
                        clip={"x": 0, "y": 0, "width": 1400, "height": 320})
        select.evaluate("el => { el.size = 0; }")
        select.select_option(SECOND)
        page.wait_for_url(f"**/jobs?cluster={SECOND}", timeout=90_000)
        page.locator(".tabulator .tabulator-row").first.wait_for(timeout=60_000)
        assert page.locator(".hp-cluster select").input_value() == SECOND
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(screenshots / "two-clusters-jobs-second.png"),
                        full_page=True)
        # each cluster's application summary, its own (seed 0 and 1 of the same plan:
        # an executable no rule names ran on the first only)
        summaries = {}
        for cluster, name in ((two.first, "first"), (SECOND, "second")):
            page.goto(f"{two.web}/applications?cluster={cluster}&start={DAY}&end=2026-11-22",
                      timeout=120_000)
            table = page.locator("table.hp-facts")
            table.wait_for(timeout=120_000)
            page.wait_for_load_state("networkidle")
            assert page.locator(".hp-cluster select").input_value() == cluster
            summaries[name] = table.inner_text()
            assert "LAMMPS" in summaries[name] and "GROMACS" in summaries[name]
            page.screenshot(path=str(screenshots / f"two-clusters-applications-{name}.png"),
                            full_page=True)
        assert summaries["first"] != summaries["second"]
        assert "unknown" in summaries["first"] and "unknown" not in summaries["second"]
    finally:
        page.close()
