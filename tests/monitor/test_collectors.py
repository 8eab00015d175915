"""Each collector against trees whose numbers we know.

``nodetree_4cpu`` was written by hand (see its README); ``nodetree`` was
recorded from a real VM, so there the expected numbers are read straight
from the recorded files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.collectors import REGISTRY, CollectorUnavailable, block, cpu, mem, net, numa
from hpcperf_monitor.collectors import ps as ps_collector
from hpcperf_monitor.collectors import vm as vm_collector
from hpcperf_monitor.rawformat import Schema


def named(schema: Schema, values: tuple[int, ...]) -> dict[str, int]:
    return dict(zip(schema.names, values, strict=True))


def test_registry_covers_every_schema():
    assert set(REGISTRY) == set(schemas.ALL)


def test_cpu_per_cpu_rows(tree4: Path):
    rows = cpu.collect(tree4)
    assert list(rows) == ["0", "1", "2", "3"]  # the all-CPU "cpu" total is not a device
    assert rows["1"] == (1101, 11, 501, 100001, 101, 11, 21)  # steal/guest columns dropped
    assert rows["2"][0] == 900


def test_ps_loads_times_100(tree4: Path):
    # loadavg "3.07 2.50 0.05 3/517": loads x100, running/threads split
    assert ps_collector.collect(tree4) == {"-": (987654321, 4242, 307, 250, 5, 3, 517)}


def test_vm_picks_schema_keys(tree4: Path):
    assert vm_collector.collect(tree4) == {"-": (5000, 6000, 7, 8, 900000, 90)}


def test_numa_per_node(tree4: Path):
    assert numa.collect(tree4) == {
        "0": (1000001, 2, 3, 4, 1000000, 5),
        "1": (2000001, 6, 7, 8, 2000000, 9),
    }


def test_mem_per_node(tree4: Path):
    rows = mem.collect(tree4)
    assert list(rows) == ["0", "1"]
    assert rows["0"] == (8000000, 3000000, 5000000, 2000000, 1000000, 120, 8, 1500000, 300000,
                         2400000, 20000, 0, 0, 250000, 1048576, 16, 4)
    node1 = named(schemas.MEM, rows["1"])
    assert node1["MemUsed"] == 8100000 - 7000000
    assert node1["NFS_Unstable"] == 0  # absent on newer kernels
    assert node1["HugePages_Free"] == 16


def test_mem_falls_back_to_proc_meminfo(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text(
        "MemTotal: 1000 kB\nMemFree: 400 kB\nBuffers: 20 kB\nCached: 100 kB\n"
        "SwapCached: 5 kB\nActive: 300 kB\nHugePages_Total: 2\n"
    )
    node0 = named(schemas.MEM, mem.collect(tmp_path)["0"])
    assert node0["MemUsed"] == 600
    assert node0["FilePages"] == 125  # Cached + SwapCached + Buffers
    assert node0["Active"] == 300
    assert node0["HugePages_Total"] == 2
    assert node0["Slab"] == 0


def test_block_whole_disks_only(tree4: Path):
    # nvme0n1p1 is a partition; loop0 and ram0 are memory
    assert block.collect(tree4) == {
        "nvme0n1": (1000, 20, 80000, 4294967295, 2000, 40, 160000, 700, 1, 3000, 4000),
    }


def test_block_prefers_sys_block_and_masks_32_bit(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/diskstats").write_text(
        "   8   0 sda 1 2 3 4294967301 5 6 7 8 0 9 10\n"
        "   8   1 sda1 1 2 3 4 5 6 7 8 0 9 10\n"
        "   9   0 md12 4 0 8 1 0 0 0 0 0 1 1\n"
        "  11   0 sr0 1 0 2 1 0 0 0 0 0 1 1\n"
    )
    for disk in ("sda", "md12"):
        (tmp_path / "sys/block" / disk).mkdir(parents=True)
    rows = block.collect(tmp_path)
    assert sorted(rows) == ["md12", "sda"]  # sr0 is not in /sys/block: the kernel's list wins
    assert rows["sda"][3] == 5  # 2**32 + 5 wrapped into the W=32 column


@pytest.mark.parametrize(("name", "expected"), [
    ("sda1", True), ("nvme0n1p1", True), ("mmcblk0p2", True),
    ("sda", False), ("nvme0n1", False), ("md0", False), ("dm-3", False),
])
def test_partition_names(name: str, expected: bool):
    names = {"sda", "sda1", "nvme0n1", "nvme0n1p1", "mmcblk0", "mmcblk0p2", "md0", "dm-3"}
    assert block.is_partition(name, names) is expected


def test_net_every_interface(tree4: Path):
    rows = net.collect(tree4)
    assert sorted(rows) == ["eth0", "lo"]
    eth0 = named(schemas.NET, rows["eth0"])
    assert eth0["rx_bytes"] == 123456789
    assert eth0["tx_bytes"] == 987654321
    assert eth0["rx_dropped"] == 11
    assert eth0["tx_window_errors"] == 0  # file missing for this driver
    lo = named(schemas.NET, rows["lo"])
    assert (lo["rx_bytes"], lo["tx_packets"]) == (5555, 55)


def test_every_row_matches_its_schema(tree4: Path, recorded: Path):
    for root in (tree4, recorded):
        for type_, collect in REGISTRY.items():
            try:
                rows = collect(root)
            except CollectorUnavailable:
                continue  # e.g. no cgroups in these trees: nodetree_hw covers them
            for device, values in rows.items():
                assert len(values) == len(schemas.ALL[type_].events), (root, type_, device)
                assert all(isinstance(v, int) and v >= 0 for v in values)


def test_recorded_tree_against_its_files(recorded: Path):
    stat = (recorded / "proc/stat").read_text().splitlines()
    cpu_lines = [line.split() for line in stat if line.startswith("cpu") and line[3] != " "]
    rows = cpu.collect(recorded)
    assert len(rows) == len(cpu_lines) == 2
    assert rows["1"] == tuple(int(v) for v in cpu_lines[1][1:8])
    disks = block.collect(recorded)
    assert list(disks) == ["vda"]  # loop0-7 and zram0 skipped
    vda = next(line.split() for line in (recorded / "proc/diskstats").read_text().splitlines()
               if " vda " in line)
    assert disks["vda"] == tuple(int(v) for v in vda[3:14])
    assert sorted(net.collect(recorded)) == ["eth0", "ifb0", "ifb1", "lo"]
    lo_rx = int((recorded / "sys/class/net/lo/statistics/rx_bytes").read_text())
    assert named(schemas.NET, net.collect(recorded)["lo"])["rx_bytes"] == lo_rx
    node0 = named(schemas.MEM, mem.collect(recorded)["0"])
    assert node0["MemUsed"] == node0["MemTotal"] - node0["MemFree"] > 0


@pytest.mark.parametrize("type_", sorted(REGISTRY))
def test_absent_source_is_unavailable(tmp_path: Path, type_: str):
    with pytest.raises(CollectorUnavailable):
        REGISTRY[type_](tmp_path)


def test_cpu_cheap_on_128_cpus(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    lines += [f"cpu{i} {i} 2 3 4 5 6 7 8 0 0" for i in range(128)]
    lines += ["intr " + " ".join(["0"] * 4000), "ctxt 1", "processes 2"]
    (tmp_path / "proc/stat").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    for _ in range(100):
        rows = cpu.collect(tmp_path)
    assert len(rows) == 128 and rows["127"][0] == 127
    assert time.perf_counter() - start < 2.0  # ~10 ms here; far from a hot-path cost
