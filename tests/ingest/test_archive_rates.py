"""Counter wraps (32 and 48 bits) and a reboot inside one file, through import,
the archive index and host_data into PostgreSQL; rates worked out by hand."""

from __future__ import annotations

import psycopg
import pytest

from hpcperfstats.hostdata.load import build_host_data
from hpcperfstats.ingest.importer import import_archive

from .conftest import HOUR, START

E = int(START.timestamp())  # 2026-11-20 12:00 UTC
SCHEMA = "!ib port_xmit_data,E,U=4B,W=32\n!opa port_rcv_data,E,U=4B,W=48\n!mem MemUsed,U=KB\n"


def sample(t: int, job: str, ib: int, opa: int) -> str:
    return f"{t} {job} n1.example.org\nib mlx5_0.1 {ib}\nopa hfi1_0.1 {opa}\nmem 0 10\n"


FILE = (
    "$tacc_stats 2.3.5\n$hostname n1.example.org\n$uptime 1000\n" + SCHEMA
    + sample(E, "7", 2**32 - 100, 2**48 - 1000)
    + sample(E + 100, "7", 50, 1000)  # both wrapped
    # reboot mid-file: uptime 30 s at E+300 -> booted at E+270, not E-1000
    + "$tacc_stats 2.3.5\n$hostname n1.example.org\n$uptime 30\n" + SCHEMA
    + sample(E + 300, "-", 10, 10)
    + sample(E + 400, "-", 410, 110)
)


@pytest.mark.integration
def test_wraps_and_reboot_through_import_and_archive(tmp_path, dirs, pg_url):
    (tmp_path / "old" / "n1.example.org").mkdir(parents=True)
    (tmp_path / "old" / "n1.example.org" / str(E)).write_text(FILE)
    res = import_archive(tmp_path / "old", dirs["archive"], dirs["quarantine"])
    assert (res.files, res.samples, res.issues) == (1, 4, 0)
    assert (dirs["archive"] / "n1" / f"{E}.idx").read_text().split("\n")[2].startswith(
        f"{E + 300} ")
    assert res.hours == {"2026-11-20-12:00"}  # what is reported to Dagster
    again = import_archive(tmp_path / "old", dirs["archive"], dirs["quarantine"])
    # nothing copied, the hour reported again: an import cut off before its report
    # is healed by running it again (a repeat report only rebuilds the hour)
    assert (again.files, again.skipped, again.hours) == (0, 1, {"2026-11-20-12:00"})

    with psycopg.connect(pg_url) as conn:
        load = build_host_data(conn, dirs["archive"], START, START + HOUR, 3600)
        rows = conn.execute(
            "SELECT type, device, extract(epoch FROM time)::bigint - %s, value, unit "
            "FROM host_data WHERE type IN ('ib', 'opa') ORDER BY 1, 2, 3", (E,)).fetchall()
    assert (load.samples, load.samples_unloaded) == (4, 0)
    # ib: 150 words in 100 s after a 32-bit wrap = 6 B/s; after the reboot 400 words = 16 B/s
    # opa: 2000 words after a 48-bit wrap = 80 B/s; then 100 words = 4 B/s
    # nothing at +300: the reboot starts new series (no 2^32-sized rate)
    assert rows == [
        ("ib", "", 100, pytest.approx(6.0), "B/s"), ("ib", "", 400, pytest.approx(16.0), "B/s"),
        ("ib", "mlx5_0.1", 100, pytest.approx(6.0), "B/s"),
        ("ib", "mlx5_0.1", 400, pytest.approx(16.0), "B/s"),
        ("opa", "", 100, pytest.approx(80.0), "B/s"), ("opa", "", 400, pytest.approx(4.0), "B/s"),
        ("opa", "hfi1_0.1", 100, pytest.approx(80.0), "B/s"),
        ("opa", "hfi1_0.1", 400, pytest.approx(4.0), "B/s"),
    ]
