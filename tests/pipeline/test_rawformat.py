"""Reader and writer against the real Stampede3 file; numbers checked with awk."""

from __future__ import annotations

from hpcperf_monitor.rawformat import Event, read_raw, write_raw

FIRST = 1773864970.470903
SECOND = 1773865196.714527


def test_reads_every_sample_device_and_type(stampede_text):
    raw = read_raw(stampede_text, "stampede")
    assert raw.issues == []
    assert len(raw.samples) == 17
    assert len(raw.headers) == 1
    first = raw.samples[0]
    assert first.time == FIRST and raw.samples[1].time == SECOND
    assert first.jobid == "2946877" and first.job == "2946877"
    assert first.host == "c571-001.stampede3.tacc.utexas.edu"
    assert len(first.rows["cpu"]) == 128
    assert len(first.rows["numa"]) == 8 and len(first.rows["mem"]) == 8
    assert sorted(first.rows) == ["block", "cpu", "mem", "net", "numa", "proc", "ps",
                                  "sysv_shm", "tmpfs", "vfs", "vm"]
    assert all(len(s.rows["cpu"]) == 128 for s in raw.samples)
    assert first.rows["cpu"]["0"] == (8051233, 17515, 1863104, 162099030, 24697, 87035, 440252)
    assert first.rows["ps"]["-"] == (173033593372, 18714576, 855, 942, 948, 9, 4549)


def test_header_and_schema_options(stampede_text):
    header = read_raw(stampede_text).headers[0]
    assert header.properties["tacc_stats"] == "2.3.5"
    assert header.hostname == "c571-001.stampede3.tacc.utexas.edu"
    assert header.uptime == 1728024
    schemas = header.schemas
    assert len(schemas) == 11
    sectors = schemas["block"].events[2]
    assert (sectors.name, sectors.cumulative, sectors.multiplier, sectors.unit) == (
        "rd_sectors", True, 512, "B")
    assert schemas["block"].events[8].name == "in_flight"
    assert not schemas["block"].events[8].cumulative  # a gauge
    assert schemas["cpu"].names == ("user", "nice", "system", "idle", "iowait", "irq",
                                    "softirq")
    assert all(e.unit == "cs" and e.cumulative for e in schemas["cpu"].events)
    assert len(schemas["mem"].events) == 17 and schemas["mem"].events[0].unit == "KB"
    assert schemas["proc"].events[1].unit == "kB"
    # the C monitor declares no W=: the kernel's widths apply (rates.KERNEL_WIDTHS)
    assert all(e.width is None for s in schemas.values() for e in s.events)


def test_writer_round_trip_is_identical(stampede_text):
    raw = read_raw(stampede_text)
    again = read_raw(write_raw(raw))
    assert again.issues == []
    assert [s.time for s in again.samples] == [s.time for s in raw.samples]
    assert [s.rows for s in again.samples] == [s.rows for s in raw.samples]
    assert again.headers[0].schemas == raw.headers[0].schemas
    assert again.headers[0].properties == raw.headers[0].properties
    assert write_raw(again) == write_raw(raw)


def test_event_options_round_trip():
    for spec in ["rd_ticks,E,U=ms,W=32", "pkg_energy,E,U=uJ,W=32", "MemTotal,U=KB",
                 "ctl0,C", "x,E,R=S", "odd,Q=1"]:
        assert Event.parse(spec).spec() == spec
    assert Event.parse("odd,Q=1").extra == ("Q=1",)


def test_bad_lines_become_issues_and_the_rest_is_read():
    text = (
        "$tacc_stats 2.3.5\n$hostname n1\n$uptime 100\n"
        "!cpu user,E,U=cs idle,E,U=cs\n"
        "!bad x,W=99\n"
        "100.0 - n1\ncpu 0 1 2\ncpu 1 1\ngpu 0 5\ncpu 2 1 x\n"
        "200.0 - n1\n%seq 7\ncpu 0 3 4\ncpu 0 5 6\n"
        "garbage-line\n"
        "@fast\n300.0 - n1\ncpu 0 9 9\n"
    )
    raw = read_raw(text, "t.raw")
    reasons = [(i.line, i.reason.split(":")[0]) for i in raw.issues]
    assert reasons == [
        (5, "bad schema"),
        (8, "cpu expects 2 values, got 1"),
        (9, "type 'gpu' has no schema"),
        (10, "bad value"),
        (14, "duplicate device '0' for cpu in one sample"),
        (15, "data line needs '<type> <device> <values>'"),
    ]
    assert [s.time for s in raw.samples] == [100.0, 200.0, 300.0]
    assert raw.samples[0].rows == {"cpu": {"0": (1, 2)}}
    assert raw.samples[1].seq == 7
    assert raw.samples[2].tier == "fast"
    assert str(raw.issues[0]).startswith("t.raw:5: bad schema")


def test_fast_samples_carry_only_fast_events():
    text = (
        "$hostname n1\n!mem used,U=KB total,U=KB,R=S\n"
        "@full\n10.0 - n1\nmem 0 5 100\n"
        "@fast\n20.0 - n1\nmem 0 6\n"
    )
    raw = read_raw(text)
    assert raw.issues == []
    fast = raw.samples[1]
    assert [e.name for e in fast.events("mem")] == ["used"]
    assert fast.rows["mem"]["0"] == (6,)
    assert read_raw(write_raw(raw)).samples[1].rows == fast.rows
