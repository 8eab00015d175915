"""Header, samples, framing and the on-disk state, without a broker."""

from __future__ import annotations

import shutil
from pathlib import Path

from hpcperf_monitor import schemas
from hpcperf_monitor.framing import Framer
from hpcperf_monitor.rawformat import boot_time, read_raw
from hpcperf_monitor.sampler import Sampler
from hpcperf_monitor.state import HostState


def test_header_properties_in_tacc_order(tree4: Path):
    sample = Sampler(tree4).sample(now=1700000000.0)
    header = sample.header
    assert list(header.properties.items()) == [
        ("tacc_stats", schemas.FORMAT_VERSION),
        ("hostname", "c401-004.test.example"),
        ("uname", "Linux x86_64 5.14.0-test.x86_64 "
                  "#1 SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026"),
        ("uptime", "123456"),  # 123456.78 truncated to whole seconds
    ]
    assert list(header.schemas) == ["block", "cpu", "mem", "net", "numa", "ps", "vm"]
    assert sample.host == "c401-004.test.example"


def test_missing_sources_leave_types_out(tree4: Path, tmp_path: Path):
    root = tmp_path / "node"
    (root / "proc").mkdir(parents=True)
    for name in ("stat", "loadavg", "uptime"):
        shutil.copy(tree4 / "proc" / name, root / "proc" / name)
    sample = Sampler(root).sample(seq=1)
    assert list(sample.header.schemas) == ["cpu", "ps"]
    assert list(sample.rows) == ["cpu", "ps"]


def test_marks_jobid_and_roundtrip(tree4: Path):
    sampler, framer = Sampler(tree4, ["cpu", "ps"]), Framer()
    first = framer.frame(sampler.sample(jobid="4711", seq=7, begin="4711", now=1700000000.5))
    second = framer.frame(sampler.sample(jobid="4711", seq=8, end="4711", now=1700000300.5))
    assert first.startswith("$tacc_stats ")
    assert not second.startswith("$")  # same header: sample lines only
    raw = read_raw(first + second)
    assert raw.issues == []
    assert len(raw.headers) == 1
    s1, s2 = raw.samples
    assert (s1.time, s1.jobid, s1.seq) == (1700000000.5, "4711", 7)
    assert s1.mark_values("begin") == ["4711"]
    assert (s2.seq, s2.mark_values("end")) == (8, ["4711"])
    assert s1.rows["cpu"]["3"] == (999, 10, 500, 100000, 100, 10, 20)
    assert s1.rows["ps"]["-"] == (987654321, 4242, 307, 250, 5, 3, 517)
    assert boot_time(raw.headers[0]) == 1700000000.5 - 123456


def test_header_rotates_daily_and_keeps_types_that_vanish(tree4: Path, tmp_path: Path):
    root = tmp_path / "node"
    shutil.copytree(tree4, root)
    sampler = Sampler(root, rotate_s=86400)
    h1 = sampler.sample(now=1000.0).header
    assert sampler.sample(now=1000.0 + 86399).header is h1
    h2 = sampler.sample(now=1000.0 + 86400).header
    assert h2 is not h1
    shutil.rmtree(root / "sys/class/net")  # e.g. the driver was unloaded
    # a type that goes away stays declared (no header of its own: issue 14 item 10)
    h3 = sampler.sample(now=1000.0 + 86401).header
    assert h3 is h2 and "net" in h3.schemas
    h4 = sampler.sample(now=1000.0 + 2 * 86400).header  # until the next rotation
    assert h4 is not h3 and "net" not in h4.schemas


def test_seq_survives_a_new_process_object(tmp_path: Path):
    assert [HostState(tmp_path, "n1").next_seq() for _ in range(3)] == [1, 2, 3]
    assert HostState(tmp_path, "n1").next_seq() == 4
    assert HostState(tmp_path, "n2").next_seq() == 1  # per host
    assert (tmp_path / "n1" / "seq").read_text() == "4\n"


def test_jobs_begin_end(tmp_path: Path):
    state = HostState(tmp_path, "n1")
    assert state.current_job() == "-"
    state.begin_job("10")
    state.begin_job("11")
    assert state.current_job() == "11"
    state.end_job("11")
    assert state.current_job() == "10"
    state.end_job("10")
    assert state.current_job() == "-"


def test_a_broken_source_drops_only_its_type(tree4: Path, tmp_path: Path, caplog):
    root = tmp_path / "node"
    shutil.copytree(tree4, root)
    (root / "proc/diskstats").write_text(" 259 0 nvme0n1 " + "x " * 11 + "\n")
    sample = Sampler(root, ["block", "cpu"]).sample(seq=1)
    assert list(sample.rows) == ["cpu"]
    assert "block collector failed: ValueError" in caplog.text
