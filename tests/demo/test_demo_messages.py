"""Raw stats messages of the demo cluster: format, marks and counters that match the plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from demo_helpers import (
    Parsed,
    busy_cores,
    check_ground_truth,
    counter_delta,
    gauge,
    job_samples,
    parse_cluster,
)
from hpcperf_demo.cluster import IDLE_MEM_BW, DemoConfig, make_plan, perf_hosts
from hpcperf_demo.generate import accounting_files, iter_messages


def test_same_seed_same_bytes_other_seed_differs():
    cfg = DemoConfig(nodes=14, hours=3)
    first = [m.text for m in iter_messages(cfg)]
    assert first == [m.text for m in iter_messages(DemoConfig(nodes=14, hours=3))]
    assert accounting_files(cfg) == accounting_files(DemoConfig(nodes=14, hours=3))
    other = [m.text for m in iter_messages(DemoConfig(nodes=14, hours=3, seed=1))]
    assert len(other) == len(first) and other != first


def test_every_message_parses_without_issues(demo: Parsed):
    assert demo.issues == []
    cfg = demo.cfg
    assert len(demo.messages) == cfg.all_nodes * cfg.samples == (16 + 1) * 288
    assert all(len(s) == cfg.samples for s in demo.samples.values())
    assert {m.sample_count for m in demo.messages} == {1}
    # a header on each host's first message and its first after UTC midnight
    assert demo.headers == {h: 2 for h in demo.plan.hosts}
    perf = set(perf_hosts(demo.plan))
    assert perf == {"c001-001", "c001-002", "c001-005"}
    gpus = set(demo.plan.idle_hosts) | set(demo.cfg.gpu_hosts())
    for host, samples in demo.samples.items():
        assert [s.seq for s in samples] == list(range(1, 289))
        assert {s.host for s in samples} == {host}
        assert samples[0].header is not samples[-1].header
        rotated = [s for s in samples if s.header is samples[-1].header][0]
        assert datetime.fromtimestamp(rotated.time, UTC).strftime("%H:%M") == "00:00"
        # the nodes of the compute- and the memory-bound job also count FLOPs and bytes
        counted = {"pmc", "imc", "ib_ext", "llite"} if host in perf else set()
        counted |= {"nvidia_gpu"} if host in gpus else set()  # GPUs at rest or busy
        assert set(samples[0].rows) - {"procexe"} == {
            "block", "cpu", "mem", "net", "numa", "ps", "vm"} | counted
        # the processes of the running job (application detection), on no idle node
        assert all(("procexe" in s.rows) == (s.job is not None) for s in samples)
        assert len(samples[0].rows["cpu"]) == 16 and set(samples[0].rows["net"]) == {
            "lo", "eth0", "ib0"
        }  # fmt: skip


def test_messages_are_in_time_order_across_hosts(demo: Parsed):
    times = [m.time for m in demo.messages]
    steps = [int((t - demo.cfg.start.timestamp()) // 300) for t in times]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 287
    assert [m.host for m in demo.messages[:17]] == list(demo.plan.hosts)


def test_header_uptime_matches_a_fixed_boot_time(demo: Parsed):
    for samples in demo.samples.values():
        first, last = samples[0], samples[-1]
        boot_first = first.time - first.header.uptime
        boot_last = [s for s in samples if s.header is last.header][0]
        boot_last = boot_last.time - last.header.uptime
        assert abs(boot_first - boot_last) < 1.0
        assert 2 * 86400 <= demo.cfg.start.timestamp() - boot_first <= 61 * 86400


def test_record_jobids_and_begin_end_marks(demo: Parsed):
    for job in demo.plan.jobs:
        for host in job.hosts:
            samples = job_samples(demo, job, host)
            assert samples[0].time - job.start.timestamp() < 1.0
            assert samples[0].mark_values("begin") == [job.jobid]
            if job.end is None:
                assert samples[-1] is demo.samples[host][-1]
                assert all(not s.mark_values("end") for s in samples)
            else:
                assert 0 <= samples[-1].time - job.end.timestamp() < 1.0
                assert samples[-1].mark_values("end") == [job.jobid]
                expected = (job.end - job.start).total_seconds() / demo.cfg.interval + 1
                assert len(samples) == expected
    idle = demo.plan.idle_hosts
    assert idle == ["c001-016"]
    assert {s.jobid for s in demo.samples[idle[0]]} == {"-"}


def test_cpu_fields_grow_by_exactly_one_interval_per_cpu(demo: Parsed):
    for samples in demo.samples.values():
        for a, b in zip(samples[:40], samples[1:41], strict=True):
            for cpu, values in b.rows["cpu"].items():
                assert sum(values) - sum(a.rows["cpu"][cpu]) == 300 * 100


def test_half_core_job_burns_8_cores_per_node(demo: Parsed):
    (job,) = demo.plan.by_behaviour("half_cores")
    assert job.busy_cores == {h: 8.0 for h in job.hosts} and len(job.hosts) == 2
    samples = job_samples(demo, job, job.hosts[1])
    a, b = samples[10], samples[11]
    assert abs(busy_cores(a, b) - 8) <= 0.08
    # cores 0-7 busy, 8-15 idle
    assert counter_delta(a, b, "cpu", "user") > 0
    assert b.rows["cpu"]["12"][0] == a.rows["cpu"]["12"][0]


def test_idle_node_of_multi_node_job_reads_zero(demo: Parsed):
    (job,) = demo.plan.by_behaviour("idle_nodes")
    busy = [job.busy_cores[h] for h in job.hosts]
    assert busy == [16.0, 16.0, 0.0, 0.0]
    idle_host = job.hosts[3]
    samples = job_samples(demo, job, idle_host)
    for a, b in zip(samples, samples[1:], strict=False):
        assert busy_cores(a, b) < 0.01
    samples = job_samples(demo, job, job.hosts[0])
    assert abs(busy_cores(samples[3], samples[4]) - 16) <= 0.16


def test_every_job_matches_its_ground_truth_within_one_percent(demo: Parsed):
    """Time averages from the counters equal the plan's numbers (the pipeline's oracle)."""
    assert check_ground_truth(demo) == sum(j.nnodes for j in demo.plan.jobs)


@pytest.mark.parametrize(
    "cfg",
    [
        DemoConfig(nodes=5, hours=6, interval=60, seed=7,
                   start=datetime(2026, 11, 20, 21, 30, tzinfo=UTC)),
        DemoConfig(nodes=20, hours=30, interval=600, seed=2),
        DemoConfig(nodes=14, hours=4, cpus_per_node=48, numa_nodes=4,
                   mem_per_node_bytes=256 * 2**30, seed=5),
    ],
    ids=["5x6h@60s", "20x30h@600s", "48cores-4numa"],
)  # fmt: skip
def test_other_shapes_parse_and_match_ground_truth(cfg):
    parsed = parse_cluster(cfg)
    assert parsed.issues == []
    assert len(parsed.messages) == cfg.all_nodes * cfg.samples
    assert check_ground_truth(parsed) > 0


def test_counter_nodes_count_the_plans_flops_and_memory_bytes(demo: Parsed):
    """pmc/imc rows as the monitor writes them (per CPU; per controller and socket),
    and their rates, worked out by hand from the plan, on the nodes that have them."""
    (cpu_job,) = demo.plan.by_behaviour("cpu_bound")
    (mem_job,) = demo.plan.by_behaviour("memory_heavy")
    # compute-bound: 16 busy cores x 8 GFLOP/s, 16 x 1 GB/s + the OS's 40 MB/s
    # memory-bound: 4 busy cores x 0.25 GFLOP/s, 4 x 10 GB/s + 40 MB/s
    for job, flops, nbytes in ((cpu_job, 16 * 8e9, 16 * 1e9 + IDLE_MEM_BW),
                               (mem_job, 4 * 2.5e8, 4 * 1e10 + IDLE_MEM_BW)):
        for host in job.hosts:
            a, b = job_samples(demo, job, host)[2:4]
            assert set(b.rows["pmc"]) == {str(c) for c in range(16)}
            assert set(b.rows["imc"]) == {"uncore_imc_0.0", "uncore_imc_0.8",
                                          "uncore_imc_1.0", "uncore_imc_1.8"}
            assert counter_delta(a, b, "pmc", "flops") / 300 == pytest.approx(flops, rel=1e-9)
            moved = counter_delta(a, b, "imc", "read_bytes") + counter_delta(
                a, b, "imc", "write_bytes")
            assert abs(moved / 300 - nbytes) < 4 * 64 / 300  # whole 64-byte lines per device
            assert counter_delta(a, b, "imc", "read_bytes") / moved == pytest.approx(2 / 3,
                                                                                    abs=1e-6)
            # 2.5 GHz on each busy core: the pipeline's cpu_freq_hz
            assert counter_delta(a, b, "pmc", "cycles") / 300 == pytest.approx(
                job.busy_cores[host] * 2.5e9)
    # the idle node's two GPUs rest at 60 W each: energy in mJ over 300 s
    (idle,) = demo.plan.idle_hosts
    a, b = demo.samples[idle][5:7]
    assert counter_delta(a, b, "nvidia_gpu", "energy") / 300 / 1000 == 2 * 60.0
    assert gauge(b, "nvidia_gpu", "utilization") == 0
    # the half-cores job's nodes have none: its FLOPS stay "not measured"
    (half,) = demo.plan.by_behaviour("half_cores")
    assert all("pmc" not in s.rows for h in half.hosts for s in demo.samples[h])


def test_gpu_node_rows_are_the_plans_gpu_use(demo: Parsed):
    """``nvidia_gpu`` rows of the GPU node, worked out from the plan: while the
    training job runs, GPU 0 reads 92 % busy, 60 GiB used and 400 W (energy grows by
    400 W x 300 s); at rest 0 %, 0 B and 60 W; the four GPUs together 360 % busy."""
    train, idle = demo.plan.by_behaviour("gpu_training") + demo.plan.by_behaviour("gpu_idle")
    (host,) = train.hosts
    a, b = job_samples(demo, train, host)[3:5]
    util = b.header.schemas["nvidia_gpu"].names.index("utilization")
    mem = b.header.schemas["nvidia_gpu"].names.index("mem_used")
    assert sorted(b.rows["nvidia_gpu"]) == ["0", "1", "2", "3"]
    assert (b.rows["nvidia_gpu"]["0"][util], b.rows["nvidia_gpu"]["0"][mem]) == (92, 60 * 2**30)
    assert gauge(b, "nvidia_gpu", "utilization") == 92 + 88 + 95 + 85
    assert counter_delta(a, b, "nvidia_gpu", "energy") == (400 + 390 + 410 + 380) * 1000 * 300
    # the idle-GPU job: GPU 0 at 2 %, the rest at rest; before any job, all at rest
    s = job_samples(demo, idle, host)[4]
    assert gauge(s, "nvidia_gpu", "utilization") == 2
    first = demo.samples[host][0]
    assert gauge(first, "nvidia_gpu", "utilization") == 0
    assert gauge(first, "nvidia_gpu", "mem_used") == 0


def test_memory_heavy_job_holds_90_percent_of_node_memory(demo: Parsed):
    (job,) = demo.plan.by_behaviour("memory_heavy")
    (host,) = job.hosts
    assert abs(job.mem_used_bytes[host] / (64 * 2**30) - 0.9) < 0.001
    s = job_samples(demo, job, host)[5]
    total = gauge(s, "mem", "MemTotal")
    assert total == 64 * 2**20  # KiB over both NUMA nodes
    assert 0 < gauge(s, "mem", "MemFree") < 0.1 * total


def test_wrap_host_rd_ticks_wraps_exactly_once(demo: Parsed):
    for host, samples in demo.samples.items():
        idx = samples[0].header.schemas["block"].names.index("rd_ticks")
        values = [s.rows["block"]["nvme0n1"][idx] for s in samples]
        drops = sum(b < a for a, b in zip(values, values[1:], strict=False))
        assert all(0 <= v < 2**32 for v in values)
        assert drops == (1 if host == demo.plan.wrap_host else 0), host


def test_fixture_shaped_nodes_look_like_the_stampede3_fixture(stampede_text):
    """``shape="fixture"``: the fixture node's devices and size, the plan's ground
    truth all the same, deterministic, and read by the fast path whole."""
    cfg = DemoConfig.of_shape("fixture", nodes=6, hours=2, interval=600)
    parsed = parse_cluster(cfg)
    assert parsed.issues == []
    assert check_ground_truth(parsed) > 0
    assert [m.text for m in iter_messages(cfg)] == [m.text for m in parsed.messages]
    s = parsed.samples["c001-001"][3]
    shape = {t: len(devices) for t, devices in s.rows.items()}
    assert {t: shape[t] for t in ("cpu", "numa", "mem", "block", "net", "ib_ext", "llite",
                                  "tmpfs", "vfs", "sysv_shm")} == {
        "cpu": 128, "numa": 8, "mem": 8, "block": 6, "net": 6, "ib_ext": 1, "llite": 2,
        "tmpfs": 3, "vfs": 1, "sysv_shm": 1}  # fmt: skip
    assert shape["proc"] >= 36
    # a sample (header excluded) within 15 % of the fixture's (its 17 samples' mean)
    fixture_sample = len(stampede_text.split("\n\n", 1)[1]) / 17
    body = [len(m.text) for m in parsed.messages if not m.text.startswith("$")]
    assert abs(sum(body) / len(body) / fixture_sample - 1) < 0.15
    # IPoIB traffic shows on the InfiniBand port, in 4-byte words
    a, b = parsed.samples["c001-001"][1:3]
    net, ib = s.header.schemas["net"].names, s.header.schemas["ib_ext"].names
    tx = b.rows["net"]["ib0"][net.index("tx_bytes")] - a.rows["net"]["ib0"][net.index("tx_bytes")]
    words = (b.rows["ib_ext"]["mlx5_0.1"][ib.index("port_xmit_data")]
             - a.rows["ib_ext"]["mlx5_0.1"][ib.index("port_xmit_data")])
    assert abs(words * 4 - tx) <= 4


def test_fixture_shape_leaves_the_default_demo_alone():
    assert DemoConfig().shape == "demo"
    with pytest.raises(ValueError, match="shape"):
        DemoConfig(shape="huge")
    fixture = DemoConfig.of_shape("fixture", nodes=3, hours=1)
    assert (fixture.cpus_per_node, fixture.numa_nodes) == (128, 8)
    # a second cluster in the same archive gets its own host names
    assert DemoConfig(nodes=2, first_rack=500).hosts() == ["c500-001", "c500-002", "g500-001"]
    assert DemoConfig(nodes=65).cpu_hosts()[-2:] == ["c001-064", "c002-001"]
    cfg = DemoConfig(nodes=3, hours=1)
    counted = set(perf_hosts(make_plan(cfg)))  # Lustre only on the nodes with counters
    plain = [m for m in iter_messages(cfg)]
    assert all("\nllite " not in m.text for m in plain if m.host not in counted)
    assert all("\nproc " not in m.text for m in plain)
