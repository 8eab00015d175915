"""Collectors whose sources this VM lacks, on hand-built trees.

``nodetree_hw`` and ``nodetree_cgv1`` are described in their READMEs; every
expected number below is worked out from those files by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.collectors import (
    CollectorUnavailable,
    build,
    cgroup,
    ib,
    ib_ext,
    llite,
    nfs,
    opa,
    proc,
    rapl,
    sysv_shm,
    tmpfs,
    vfs,
)
from hpcperf_monitor.sampler import Sampler
from hpcperf_monitor.state import HostState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HW = FIXTURES / "nodetree_hw"
V1 = FIXTURES / "nodetree_cgv1"


def test_cgroup_v2_jobs_in_both_scopes():
    rows = cgroup.collect(HW)
    # job_1001: 5 s of CPU, 1 GiB now, 2 GiB peak, io summed over two devices
    assert rows["1001"] == (5000000, 1073741824, 2147483648, 1024, 2048)
    # job_1240 under <node>_slurmstepd.scope, no memory.peak: peak = current
    assert rows["1240"] == (7, 4096, 4096, 0, 0)
    assert sorted(rows) == ["1001", "1240"]  # step_0 and system are not jobs


def test_cgroup_maps_directory_id_to_array_job():
    rows = cgroup.collect(HW, {"1240": "1234_7"})
    assert sorted(rows) == ["1001", "1234_7"] and rows["1234_7"][0] == 7


def test_cgroup_map_from_prolog_state(tmp_path: Path):
    state = HostState(tmp_path, "c500-001.test.example")
    state.begin_job("1234_7", cgroup_id="1240")
    rows = build(["cgroup"], state.dir)["cgroup"](HW)
    assert "1234_7" in rows and "1240" not in rows
    state.end_job("1234_7")
    assert "1240" in build(["cgroup"], state.dir)["cgroup"](HW)


def test_cgroup_v1():
    rows = cgroup.collect(V1)
    # 3000000999 ns -> 3000000 us; Read 4096+1, Write 8192+2; Total lines skipped
    assert rows["2002"] == (3000000, 8192, 16384, 4097, 8194)
    # job 2003 has cpuacct only: its memory is absent (cgroup_cpu), never 0
    assert "2003" not in rows
    assert cgroup.collect_cpu(V1) == {"2003": (5, 0, 0)}  # 5999 ns -> 5 us


def test_item1_cgroup_cpu_not_readable_is_absent_not_zero(tmp_path: Path):
    """Slurm with jobacct_gather/linux: a memory cgroup, no cpuacct job directory.

    The job's CPU must be absent (row in ``cgroup_mem``, no ``cpu_usage``),
    never a 0 the pipeline reads as an idle job.
    """
    job = tmp_path / "sys/fs/cgroup/memory/slurm/uid_0/job_77"
    job.mkdir(parents=True)
    (job / "memory.usage_in_bytes").write_text("1048576\n")
    (job / "memory.max_usage_in_bytes").write_text("2097152\n")
    (tmp_path / "sys/fs/cgroup/cpuacct").mkdir()
    assert cgroup.collect(tmp_path) == {}
    assert cgroup.collect_mem(tmp_path) == {"77": (1048576, 2097152, 0, 0)}
    sample = Sampler(tmp_path, types=["cgroup", "cgroup_mem"]).sample(now=1700000000.0)
    assert "cpu_usage" not in [e.name for e in sample.header.schemas["cgroup_mem"].events]
    assert sample.rows == {"cgroup": {}, "cgroup_mem": {"77": (1048576, 2097152, 0, 0)}}


def test_item10_job_boundary_sends_no_header(tmp_path: Path):
    """Job cgroups appear and vanish with jobs: one header for the whole stream."""
    from hpcperf_monitor.framing import Framer

    cpu = tmp_path / "sys/fs/cgroup/cpuacct"
    cpu.mkdir(parents=True)
    sampler, framer = Sampler(tmp_path, types=["cgroup"]), Framer()
    texts = [framer.frame(sampler.sample(now=1700000000.0))]  # no job: type still declared
    job = cpu / "slurm/job_5"
    job.mkdir(parents=True)
    (job / "cpuacct.usage").write_text("1000\n")
    (tmp_path / "sys/fs/cgroup/memory/slurm/job_5").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/memory/slurm/job_5/memory.usage_in_bytes").write_text("4096\n")
    texts.append(framer.frame(sampler.sample(now=1700000010.0)))  # job begins
    for path in (job / "cpuacct.usage", tmp_path / "sys/fs/cgroup/memory/slurm/job_5/"
                 "memory.usage_in_bytes"):
        path.unlink()
    job.rmdir()
    (tmp_path / "sys/fs/cgroup/memory/slurm/job_5").rmdir()
    texts.append(framer.frame(sampler.sample(now=1700000020.0)))  # job ended
    assert [t.startswith("$") for t in texts] == [True, False, False]
    assert "cgroup 5 1 4096 4096 0 0" in texts[1]
    # the daily rotation still re-sends it
    assert framer.frame(sampler.sample(now=1700000000.0 + 86400)).startswith("$")


def test_infiniband_kinds():
    # mlx5_0 has counters_ext: 64-bit values, never in the legacy type
    # mlx5_1 (upstream kernel, extended counters): counters/ has unicast_* so its
    # port_* files are 64-bit; mlx4_1 has no unicast_* but 8589934593 > 2^32 - 1
    # proves 64-bit counters too (extended without IETF)
    assert ib_ext.collect(HW) == {
        "mlx4_1.1": (8589934593, 41, 42, 43),
        "mlx5_0.1": (4294967296 * 3 + 5, 11, 12, 13),
        "mlx5_1.1": (21474836480, 17179869184, 600, 700),
    }
    # mlx4_0 has 32-bit counters (saturated at 2^32 - 1): legacy W=32 rows, a
    # missing file reads 0
    assert ib.collect(HW) == {"mlx4_0.1": (4294967295, 21, 22, 0), "mlx4_0.2": (7, 0, 0, 0)}
    assert opa.collect(HW) == {"hfi1_0.1": (2**40, 31, 32, 33)}
    assert all(e.width == 32 for e in schemas.IB.events)
    assert schemas.IB_EXT.events[0].multiplier == 4 and schemas.IB_EXT.events[0].unit == "B"


def test_llite_sums_mounts_of_one_filesystem():
    rows = llite.collect(HW)
    named = {fs: dict(zip(schemas.LLITE.names, v, strict=True)) for fs, v in rows.items()}
    # read_bytes is the sum column: 3000000 + 1000; opens 40 + 2
    assert named["scratch"]["read_bytes"] == 3001000
    assert named["scratch"]["write_bytes"] == 20480
    assert (named["scratch"]["open"], named["scratch"]["close"]) == (42, 42)
    assert (named["scratch"]["getattr"], named["scratch"]["statfs"]) == (14, 4)
    assert named["scratch"]["unlink"] == 2 and named["scratch"]["rename"] == 0
    assert rows["work"] == (0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0)


def test_nfs_mountstats():
    rows = nfs.collect(HW)
    # bytes: normalread+directread, normalwrite+directwrite; ops = 0+5+7+30
    assert rows == {"/home": (110, 220, 42), "/my\\040proj": (4, 6, 9)}


def test_rapl_unwraps_and_persists(tmp_path: Path):
    root = tmp_path / "node"
    import shutil

    shutil.copytree(HW / "sys/class/powercap", root / "sys/class/powercap")
    state = tmp_path / "state"
    state.mkdir()
    assert rapl.Rapl(state)(root) == {"0": (1000, 500), "1": (2000, 0)}
    # package 0 wraps: 1000 -> 400 over a range of 262143328850
    (root / "sys/class/powercap/intel-rapl:0/energy_uj").write_text("400\n")
    (root / "sys/class/powercap/intel-rapl:1/energy_uj").write_text("2500\n")
    fresh = rapl.Rapl(state)  # a new process continues from rapl.json
    assert fresh(root) == {"0": (262143328850 + 400, 500), "1": (2500, 0)}
    saved = json.loads((state / "rapl.json").read_text())
    assert saved["intel-rapl:0"] == {"raw": 400, "total": 262143329250}


def test_rapl_unwrap_arithmetic():
    assert rapl.unwrap(None, 7, 100) == {"raw": 7, "total": 7}
    assert rapl.unwrap({"raw": 90, "total": 1090}, 5, 100) == {"raw": 5, "total": 1105}


def test_proc_user_processes():
    rows = proc.collect(HW)
    # root's systemd and the kernel thread without VmSize are left out
    assert sorted(rows) == ["a_b/4243/0-63/0", "my_app/4242/0-63/0"]
    assert rows["my_app/4242/0-63/0"] == (5001, 2000, 1900, 0, 300, 250, 100, 132, 12, 1500,
                                           40, 5, 8)


def test_vfs_and_sysv_shm():
    assert vfs.collect(HW) == {"-": (20000, 3200, 89000)}
    assert sysv_shm.collect(HW) == {"-": (524288 + 1048576, 2)}


def test_tmpfs_mounts_under_root():
    seen = []

    def fake_statfs(path: str) -> tuple[int, int]:
        seen.append(path)
        if not Path(path).is_dir():
            raise FileNotFoundError(path)
        return 4096 * 3, 2

    rows = tmpfs.collect(HW, statfs=fake_statfs)
    assert rows == {"/dev/shm": (12288, 2)}  # /run/user/5001 is not in the tree
    assert seen == [str(HW / "dev/shm"), str(HW / "run/user/5001")]


def test_tmpfs_real_statvfs(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "shm").mkdir()
    (tmp_path / "proc/mounts").write_text("tmpfs /shm tmpfs rw 0 0\n")
    used, files = tmpfs.usage(str(tmp_path / "shm"))
    assert tmpfs.collect(tmp_path) == {"/shm": (used, files)}


@pytest.mark.parametrize("module", [cgroup, ib, ib_ext, opa, llite, nfs, rapl])
def test_hw_types_absent_on_tree4(module, tree4: Path):
    with pytest.raises(CollectorUnavailable):
        module.collect(tree4)


def test_sampler_on_hw_tree_roundtrips(tmp_path: Path):
    from hpcperf_monitor.framing import Framer
    from hpcperf_monitor.rawformat import read_raw

    sampler = Sampler(HW, state_dir=tmp_path)
    sample = sampler.sample(seq=1, now=1700000000.0)
    for t in ("cgroup", "ib", "ib_ext", "opa", "llite", "nfs", "rapl", "proc", "vfs", "sysv_shm"):
        assert t in sample.rows, t
    raw = read_raw(Framer().frame(sample))
    assert raw.issues == []
    assert raw.samples[0].rows["cgroup"]["1001"][0] == 5000000
