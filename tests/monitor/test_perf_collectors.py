"""The perf-event collectors ``pmc`` and ``imc``.

The sysfs side is read from the hand-built trees ``nodetree_perf_intel``
(Skylake-SP) and ``nodetree_perf_amd`` (Zen 4), see their READMEs; the
kernel side is a fake that records what is opened and returns counts we
choose. The last tests call the real ``perf_event_open`` on this machine.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hpcperf_monitor.collectors import CollectorUnavailable, imc, perf, pmc
from hpcperf_monitor.collectors.perf import EventSpec
from hpcperf_monitor.control import Control
from hpcperf_monitor.sampler import Sampler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INTEL = FIXTURES / "nodetree_perf_intel"
AMD = FIXTURES / "nodetree_perf_amd"
PMUS = perf.PMU_DIR

# Intel FP_ARITH_INST_RETIRED, event 0xc7 in config bits 0-7, umask in bits 8-15
FP_1, FP_2, FP_4, FP_8, FP_16 = 0x03C7, 0x04C7, 0x18C7, 0x60C7, 0x80C7  # 967 ... 32967


class FakeKernel:
    """Stands in for perf_event_open: records opens, returns set readings."""

    def __init__(self, fail: dict[tuple[int, int], int] | None = None) -> None:
        #: (type, config, cpu) -> (value, enabled, running); unset reads as 0
        self.counts: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        self.fail = fail or {}
        self.opened: list[tuple[int, int, int, int]] = []  # type, config, config1, cpu
        self.events: dict[int, tuple[int, int, int]] = {}
        self.closed: list[int] = []

    def open(self, spec: EventSpec, cpu: int) -> int:
        code = self.fail.get((spec.type, spec.config))
        if code:
            raise OSError(code, os.strerror(code))
        handle = 100 + len(self.events)
        self.events[handle] = (spec.type, spec.config, cpu)
        self.opened.append((spec.type, spec.config, spec.config1, cpu))
        return handle

    def read(self, handle: int) -> tuple[int, int, int]:
        return self.counts.get(self.events[handle], (0, 1, 1))

    def close(self, handle: int) -> None:
        self.closed.append(handle)


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# --- sysfs formats and encodings ---------------------------------------------------------


def test_parse_format_ranges():
    assert perf.parse_format("config:0-7\n") == perf.FormatField("config", ((0, 7),))
    assert perf.parse_format("config:18") == perf.FormatField("config", ((18, 18),))
    assert perf.parse_format("config1:0-63").register == "config1"
    split = perf.parse_format("config:0-7,32-35")
    assert split.ranges == ((0, 7), (32, 35))
    # 0x1c0: low 8 bits 0xc0 into bits 0-7, the next 4 bits (0x1) into bits 32-35
    assert split.place(0x1C0) == 0x1_0000_00C0
    with pytest.raises(ValueError):
        split.place(0x1000)  # 13 bits into a 12-bit field
    with pytest.raises(ValueError):
        perf.parse_format("bogus:0-7")


def test_encode_with_intel_core_formats():
    core = perf.Pmu(INTEL / PMUS / "cpu")
    assert core.type == 4
    # event 0xc7 | umask 0x18 << 8
    assert perf.encode("event=0xc7,umask=0x18", core.formats) == (0x18C7, 0, 0)
    # a bare term is 1: 0xc0 | edge 1<<18 | inv 1<<23 | cmask 1<<24 = 0x18400c0
    assert perf.encode("event=0xc0,edge,inv,cmask=1", core.formats) == (25428160, 0, 0)
    # offcore_rsp goes to config1; decimal values are read as decimal
    assert perf.encode("event=0xb7,umask=1,offcore_rsp=0x10003c0091", core.formats) == (
        0x01B7, 0x10003C0091, 0)
    with pytest.raises(ValueError, match="nosuchterm"):
        perf.encode("event=0xc7,nosuchterm=1", core.formats)


def test_encode_amd_split_event_and_umc():
    core = perf.Pmu(AMD / PMUS / "cpu")
    # AMD's 12-bit event number: 0x1c0 -> bits 0-7 = 0xc0, bits 32-35 = 0x1
    assert core.spec("event=0x1c0,umask=0x01").config == 0x1_0000_01C0
    assert core.spec("event=0x03,umask=0x1f").config == 0x1F03  # Zen 4 FLOPs
    umc = perf.Pmu(AMD / PMUS / "amd_umc_2")
    assert (umc.type, umc.cpus()) == (17, [2])
    # umc_cas_cmd.rd: event 0x0a | rdwrmask 1 << 8 = 0x10a; .wr: rdwrmask 2 -> 0x20a
    assert umc.spec(imc.AMD_EVENTS[0]).config == 266
    assert umc.spec(imc.AMD_EVENTS[1]).config == 522


def test_uncore_event_scale_is_exact():
    pmu = perf.Pmu(INTEL / PMUS / "uncore_imc_0")
    assert pmu.event("cas_count_read").config == 0x0304  # event 0x04 | umask 0x03 << 8
    assert pmu.event("cas_count_write").config == 0x0C04
    assert pmu.bytes_per_count("cas_count_read") == 64  # 6.103515625e-5 MiB, exactly
    assert pmu.cpus() == [0, 2]


def test_event_without_unit_file(tmp_path: Path):
    tree = copy_tree(INTEL, tmp_path / "node")
    events = tree / PMUS / "uncore_imc_0/events"
    (events / "cas_count_read.unit").unlink()
    pmu = perf.Pmu(events.parent)
    assert pmu.bytes_per_count("cas_count_read", Fraction(64)) == 64  # a CAS is 64 bytes
    with pytest.raises(CollectorUnavailable, match="no .unit"):
        pmu.bytes_per_count("cas_count_read")
    (events / "cas_count_write.unit").write_text("furlongs\n")
    with pytest.raises(CollectorUnavailable, match="not a byte unit"):
        pmu.bytes_per_count("cas_count_write")
    with pytest.raises(CollectorUnavailable, match="cannot encode"):
        pmu.spec("event=0x04,nosuchterm=1")


def test_cpulist_and_cpu_model():
    assert perf.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert perf.parse_cpulist("\n") == []
    assert perf.online_cpus(INTEL) == [0, 1, 2, 3]
    assert perf.cpu_model(INTEL) == perf.CpuModel("GenuineIntel", 6, 85)
    assert perf.cpu_model(AMD) == perf.CpuModel("AuthenticAMD", 25, 17)
    assert str(perf.CpuModel("GenuineIntel", 6, 63)) == "GenuineIntel family 0x6 model 0x3f"


def test_fp_event_table_by_vendor_and_model():
    skx = perf.fp_events(perf.CpuModel("GenuineIntel", 6, 0x55))
    # 8 umasks in 5 events, OR-ed where the FLOPs per instruction are equal
    assert skx == (("event=0xc7,umask=0x03", 1), ("event=0xc7,umask=0x04", 2),
                   ("event=0xc7,umask=0x18", 4), ("event=0xc7,umask=0x60", 8),
                   ("event=0xc7,umask=0x80", 16))
    assert perf.fp_events(perf.CpuModel("GenuineIntel", 6, 0x8F)) == skx  # Sapphire Rapids
    client = perf.fp_events(perf.CpuModel("GenuineIntel", 6, 0x9E))  # no AVX-512
    assert [w for _, w in client] == [1, 2, 4, 8] and client[-1][0].endswith("0x20")
    assert perf.fp_events(perf.CpuModel("GenuineIntel", 6, 0x3F)) is None  # Haswell: none
    amd = {(f, m): perf.fp_events(perf.CpuModel("AuthenticAMD", f, m))
           for f, m in ((0x17, 0x01), (0x17, 0x31), (0x19, 0x01), (0x19, 0x21), (0x19, 0x11),
                        (0x19, 0xA0), (0x1A, 0x02), (0x15, 0x02))}
    assert amd[0x17, 0x01] == amd[0x17, 0x31] == (("event=0x03,umask=0xff", 1),)  # Zen 1, 2
    assert amd[0x19, 0x01] == amd[0x19, 0x21] == (("event=0x03,umask=0xff", 1),)  # Zen 3
    assert amd[0x19, 0x11] == amd[0x19, 0xA0] == (("event=0x03,umask=0x1f", 1),)  # Zen 4
    assert amd[0x1A, 0x02] == (("event=0x03,umask=0x0f", 1),)                     # Zen 5
    assert amd[0x15, 0x02] is None
    assert perf.fp_events(perf.CpuModel("HygonGenuine", 0x18, 0)) is None


def test_perf_event_attr_layout():
    import ctypes

    assert ctypes.sizeof(perf.PerfEventAttr) == perf.PERF_ATTR_SIZE_VER5 == 112
    assert perf.PerfEventAttr.read_format.offset == 32
    assert perf.PerfEventAttr.config1.offset == 56 and perf.PerfEventAttr.config2.offset == 64
    attr = perf.make_attr(EventSpec(14, 0x0304, 5, 6))
    assert (attr.type, attr.size, attr.config, attr.config1, attr.config2) == (14, 112, 772, 5, 6)
    assert attr.read_format == 3 and attr.flags == 0  # enabled at once, nothing excluded


def test_counter_scales_multiplexed_intervals():
    kernel = FakeKernel()
    kernel.counts[(4, 1, 0)] = (100, 200, 100)  # ran half the time it was enabled
    counter = perf.Counter(kernel, kernel.open(EventSpec(4, 1), 0))
    assert counter.read() == 200
    kernel.counts[(4, 1, 0)] = (150, 400, 200)  # +50 counted in 100 of 200 ns: +100
    assert counter.read() == 300
    kernel.counts[(4, 1, 0)] = (150, 500, 200)  # never ran in this interval: nothing added
    assert counter.read() == 300
    kernel.counts[(4, 1, 0)] = (160, 510, 210)  # ran all of it: exact
    assert counter.read() == 310


# --- pmc ---------------------------------------------------------------------------------


def test_pmc_intel_values_and_flops_weights(daemon_dir: Path):
    kernel = FakeKernel()
    kernel.counts.update({
        (0, 1, 0): (1000, 10, 10), (0, 0, 0): (2000, 10, 10), (0, 9, 0): (1500, 10, 10),
        (4, FP_1, 0): (10, 10, 10),   # 10 scalar FP instructions: 10 FLOPs
        (4, FP_8, 0): (3, 10, 10),    # 3 of 512b packed double (or 256b single): 24 FLOPs
        (4, FP_16, 3): (2, 10, 10),   # 2 of 512b packed single on CPU 3: 32 FLOPs
    })
    collector = pmc.Pmc(daemon_dir, kernel=kernel)
    rows = collector(INTEL)
    assert list(rows) == ["0", "1", "2", "3"]
    assert rows["0"] == (1000, 2000, 1500, 10 + 24)
    assert rows["1"] == (0, 0, 0, 0)
    assert rows["3"] == (0, 0, 0, 32)
    # per CPU: the generic events, then the 5 FP events on the core PMU (type 4)
    assert [o[:2] for o in kernel.opened if o[3] == 1] == [
        (0, 1), (0, 0), (0, 9), (4, FP_1), (4, FP_2), (4, FP_4), (4, FP_8), (4, FP_16)]
    # cumulative since opened, multiplex-scaled: +4 FP_1 counted in half the time -> +8
    kernel.counts[(0, 1, 0)] = (1500, 20, 20)
    kernel.counts[(4, FP_1, 0)] = (14, 30, 20)
    assert collector(INTEL)["0"] == (1500, 2000, 1500, 10 + 8 + 24)


def test_pmc_amd_mperf_stands_in_for_ref_cycles(daemon_dir: Path):
    # AMD's kernel maps no generic ref-cycles event: ENOENT, as on a real Zen
    kernel = FakeKernel(fail={(0, 9): errno.ENOENT})
    kernel.counts.update({(10, 2, 2): (777, 5, 5), (4, 0x1F03, 2): (64, 5, 5)})
    rows = pmc.Pmc(daemon_dir, kernel=kernel)(AMD)
    assert rows["2"] == (0, 0, 777, 64)  # msr PMU (type 10) mperf = config 2; PMCx003 umask 0x1f
    assert [o[:2] for o in kernel.opened if o[3] == 0] == [(0, 1), (0, 0), (10, 2), (4, 0x1F03)]


def test_pmc_permission_denied_names_errno_and_paranoid(daemon_dir: Path):
    handler = _Records()
    perf.log.addHandler(handler)
    try:
        kernel = FakeKernel(fail={(0, 0): errno.EACCES})  # cycles refused, instructions opened
        collector = pmc.Pmc(daemon_dir, kernel=kernel)
        with pytest.raises(CollectorUnavailable) as first:
            collector(INTEL)
        with pytest.raises(CollectorUnavailable) as again:
            collector(INTEL)
    finally:
        perf.log.removeHandler(handler)
    message = str(first.value)
    assert message.startswith("perf_event_open(cycles on CPU 0): EACCES (Permission denied)")
    assert "perf_event_paranoid is 2" in message and "CAP_PERFMON" in message
    assert str(again.value) == message and len(kernel.opened) == 2  # not retried
    assert sorted(kernel.closed) == sorted(kernel.events)  # what did open is closed again
    assert handler.messages == [f"pmc unavailable: {message}"]  # logged once


def test_pmc_unavailable_reasons(tmp_path: Path, daemon_dir: Path):
    kernel = FakeKernel()
    bare = tmp_path / "bare"
    (bare / "proc").mkdir(parents=True)
    shutil.copy(INTEL / "proc/cpuinfo", bare / "proc/cpuinfo")
    with pytest.raises(CollectorUnavailable, match=r"no core PMU: .*devices/cpu is absent"):
        pmc.Pmc(daemon_dir, kernel=kernel)(bare)
    haswell = copy_tree(INTEL, tmp_path / "haswell")
    cpuinfo = haswell / "proc/cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace("model\t\t: 85", "model\t\t: 63"))
    with pytest.raises(CollectorUnavailable) as exc:
        pmc.Pmc(daemon_dir, kernel=kernel)(haswell)
    assert str(exc.value) == "no FP-operation event known for GenuineIntel family 0x6 model 0x3f"
    assert kernel.opened == []  # nothing opened for a CPU we cannot count FLOPs on


def test_perf_types_are_daemon_only(tmp_path: Path):
    for module in (pmc, imc):
        with pytest.raises(CollectorUnavailable, match="kept by the running daemon"):
            module.collect(INTEL)
    kernel = FakeKernel()
    other = tmp_path / "other"
    other.mkdir()
    Control(other).pid_path.write_text("1\n")  # another process is the daemon
    for state in (None, tmp_path, other):
        with pytest.raises(CollectorUnavailable, match="kept by the running daemon"):
            pmc.Pmc(state, kernel=kernel)(INTEL)
        with pytest.raises(CollectorUnavailable, match="kept by the running daemon"):
            imc.Imc(state, kernel=kernel)(INTEL)
    assert kernel.opened == []


def test_close_releases_and_reopens(daemon_dir: Path):
    kernel = FakeKernel()
    collector = pmc.Pmc(daemon_dir, kernel=kernel)
    collector(INTEL)
    opened = set(kernel.events)
    collector.close()
    assert set(kernel.closed) == opened
    collector(INTEL)  # a new series: events opened afresh
    assert len(kernel.events) == 2 * len(opened)


# --- imc ---------------------------------------------------------------------------------


def test_imc_intel_cas_bytes_per_socket(daemon_dir: Path):
    kernel = FakeKernel()
    kernel.counts.update({(14, 0x0304, 0): (1000, 5, 5), (14, 0x0C04, 0): (10, 5, 5),
                          (15, 0x0304, 2): (3, 5, 5)})
    rows = imc.Imc(daemon_dir, kernel=kernel)(INTEL)
    # 64 bytes per CAS; uncore_cha_0 is ignored
    assert rows == {"uncore_imc_0.0": (64000, 640), "uncore_imc_0.2": (0, 0),
                    "uncore_imc_1.0": (0, 0), "uncore_imc_1.2": (192, 0)}
    assert sorted({o[0] for o in kernel.opened}) == [14, 15]


def test_imc_amd_umc(daemon_dir: Path):
    kernel = FakeKernel()
    kernel.counts.update({(15, 266, 0): (2, 1, 1), (17, 522, 2): (5, 1, 1)})
    rows = imc.Imc(daemon_dir, kernel=kernel)(AMD)
    assert rows == {"amd_umc_0.0": (128, 0), "amd_umc_1.0": (0, 0),
                    "amd_umc_2.2": (0, 320), "amd_umc_3.2": (0, 0)}


def _free_running(tree: Path) -> None:
    pmu = tree / PMUS / "uncore_imc_free_running_0"
    (pmu / "format").mkdir(parents=True)
    (pmu / "events").mkdir()
    (pmu / "type").write_text("30\n")
    (pmu / "cpumask").write_text("0,2\n")
    (pmu / "format/event").write_text("config:0-7\n")
    (pmu / "format/umask").write_text("config:8-15\n")
    for name, umask in (("dclk", "0x10"), ("read", "0x20"), ("write", "0x30")):
        (pmu / "events" / name).write_text(f"event=0xff,umask={umask}\n")
    for name in ("read", "write"):
        (pmu / "events" / f"{name}.scale").write_text("6.103515625e-5\n")
        (pmu / "events" / f"{name}.unit").write_text("MiB\n")


def test_imc_free_running_only_where_no_cas_events(tmp_path: Path, daemon_dir: Path):
    both = copy_tree(INTEL, tmp_path / "icx")
    _free_running(both)
    kernel = FakeKernel()
    assert sorted(imc.Imc(daemon_dir, kernel=kernel)(both)) == [
        "uncore_imc_0.0", "uncore_imc_0.2", "uncore_imc_1.0", "uncore_imc_1.2"]  # not both
    for name in ("uncore_imc_0", "uncore_imc_1"):
        shutil.rmtree(both / PMUS / name)
    kernel = FakeKernel()
    kernel.counts[(30, 0x20FF, 2)] = (2**60, 1, 1)  # beyond float precision: exact bytes
    rows = imc.Imc(daemon_dir, kernel=kernel)(both)
    assert rows == {"uncore_imc_free_running_0.0": (0, 0),
                    "uncore_imc_free_running_0.2": (2**66, 0)}


def test_imc_unavailable_without_memory_pmu(tmp_path: Path, daemon_dir: Path):
    tree = copy_tree(AMD, tmp_path / "zen3")
    for n in range(4):
        shutil.rmtree(tree / PMUS / f"amd_umc_{n}")
    with pytest.raises(CollectorUnavailable, match="no memory-controller PMU known on this CPU"):
        imc.Imc(daemon_dir, kernel=FakeKernel())(tree)


# --- the real kernel ------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _real_tree(dest: Path) -> Path:
    """This machine's cpuinfo, CPUs, paranoid level and core/msr PMUs.

    Where the kernel shows no core PMU (most VMs), a ``cpu`` PMU with the
    raw type (4) and the vendor's formats is written, so the syscalls are
    really made and the kernel itself answers.
    """
    for rel in ("proc/cpuinfo", "sys/devices/system/cpu/online",
                "proc/sys/kernel/perf_event_paranoid"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text((Path("/") / rel).read_text())
    real = Path("/") / PMUS
    for name in ("cpu", "msr"):
        for src in [real / name / "type", *(real / name).glob("format/*"),
                    *(real / name).glob("events/*")]:
            target = dest / PMUS / name / src.relative_to(real / name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.write_text(src.read_text())
            except OSError:
                continue
    if not (dest / PMUS / "cpu/type").exists():
        like = AMD if perf.cpu_model(dest).vendor == "AuthenticAMD" else INTEL
        shutil.copytree(like / PMUS / "cpu", dest / PMUS / "cpu", dirs_exist_ok=True)
    return dest


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 1.0
    while time.perf_counter() < end:
        x = x * 1.000001 + 0.5


def _pmc_outcome(root: Path, state: Path) -> str:
    """``rows <instructions total>`` or ``unavailable: <reason>`` from a real Pmc."""
    collector = pmc.Pmc(state)
    try:
        collector(root)
        _busy(0.05)
        rows = collector(root)
    except CollectorUnavailable as exc:
        return f"unavailable: {exc}"
    finally:
        collector.close()
    return f"rows {sum(v[0] for v in rows.values())} {sum(v[1] for v in rows.values())}"


def test_real_perf_event_open_software_event():
    """A system-wide software event on CPU 0, read through the real syscall."""
    kernel = perf.SyscallKernel()
    spec = EventSpec(perf.PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK, name="cpu-clock")
    try:
        fd = kernel.open(spec, 0)
    except OSError as exc:  # not root and perf_event_paranoid > 0
        assert exc.errno in (errno.EACCES, errno.EPERM)
        assert "perf_event_paranoid is" in perf.open_error(exc, spec, 0, Path("/"))
        return
    try:
        first = kernel.read(fd)
        time.sleep(0.05)
        second = kernel.read(fd)
    finally:
        kernel.close(fd)
    elapsed_ns = second[0] - first[0]  # CPU 0's clock runs whether busy or idle
    assert 0.02e9 <= elapsed_ns <= 5e9
    assert second[1] >= second[2] > first[2]


def test_real_pmc_counts_or_names_the_kernel_refusal(tmp_path: Path, daemon_dir: Path):
    root = _real_tree(tmp_path / "node")
    outcome = _pmc_outcome(root, daemon_dir)
    if outcome.startswith("rows"):  # a PMU we may use: instructions and cycles were counted
        instructions, cycles = (int(v) for v in outcome.split()[1:])
        assert instructions > 1e6 and cycles > 1e6
        return
    # e.g. this VM (no virtual PMU): "perf_event_open(instructions on CPU 0): ENOENT ..."
    assert outcome.startswith("unavailable: perf_event_open(") or \
        "no FP-operation event known" in outcome, outcome
    if "perf_event_open(" in outcome:
        assert any(f": {name} (" in outcome for name in errno.errorcode.values()), outcome


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_real_pmc_without_privileges_names_paranoid(daemon_dir: Path):
    """As an unprivileged user the kernel refuses system-wide events (paranoid > 0)."""
    shared = Path(tempfile.mkdtemp(prefix="hpcperf-perf-"))  # readable by the child's user
    try:
        shared.chmod(0o755)
        root = _real_tree(shared / "node")
        level = int((root / "proc/sys/kernel/perf_event_paranoid").read_text())
        if "no FP-operation event known" in _pmc_outcome(root, daemon_dir):
            pytest.skip("no FP-operation event known for this CPU: nothing is opened")
        message = _as_nobody(root, shared / "state")
    finally:
        shutil.rmtree(shared)
    if level <= 0:  # unprivileged system-wide counting is allowed here
        assert message.startswith(("rows", "unavailable: perf_event_open(")), message
        return
    assert message.startswith("unavailable: perf_event_open("), message
    assert "EACCES (Permission denied)" in message
    assert f"perf_event_paranoid is {level}" in message


def _as_nobody(root: Path, state: Path) -> str:
    """:func:`_pmc_outcome` in a child that is the daemon and then drops to nobody."""
    state.mkdir()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            Control(state).pid_path.write_text(f"{os.getpid()}\n")
            os.setgid(65534)
            os.setuid(65534)  # from root: every capability goes too
            message = _pmc_outcome(root, state)
        except BaseException as exc:  # report anything to the parent
            message = f"child failed: {exc!r}"
        os.write(write_fd, message.encode())
        os._exit(0)
    os.close(write_fd)
    try:
        return os.read(read_fd, 8192).decode()
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)


def test_sampler_skips_perf_types_cleanly_here(tmp_path: Path, daemon_dir: Path):
    for state in (daemon_dir, None):
        sampler = Sampler(Path("/"), types=["pmc", "imc"], state_dir=state)
        try:
            sample = sampler.sample(now=1_700_000_000.0)
        finally:
            sampler.close()
        assert set(sample.rows) <= {"pmc", "imc"}
        assert set(sample.header.schemas) == set(sample.rows)
        for values in sample.rows.get("pmc", {}).values():
            assert len(values) == 4 and all(isinstance(v, int) for v in values)
        if state is None or not (Path("/") / PMUS / "cpu").exists():
            assert "pmc" not in sample.rows  # no core PMU on this VM, or not the daemon
        if state is None:
            assert sample.rows == {}
