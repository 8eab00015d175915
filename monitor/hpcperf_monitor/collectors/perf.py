"""Linux perf events for the hardware-counter collectors (``pmc``, ``imc``).

Three parts, kept apart so tests can feed each one by hand:

- what the kernel describes in sysfs: PMUs under
  ``/sys/bus/event_source/devices/<pmu>/`` (``type``, ``format/*``,
  ``events/*`` with their ``.scale``/``.unit``, ``cpumask``), the online
  CPUs, and the CPU's vendor/family/model from ``/proc/cpuinfo``, which
  picks the FP-operation events (:func:`fp_events`);
- the ``perf_event_open`` syscall through ctypes (:class:`SyscallKernel`),
  behind a three-method interface (:class:`Kernel`) that tests replace;
- :class:`Counter`, a monotonic total per open event, scaled when the kernel
  multiplexes more events than the CPU has counters.

Counters count from the moment they are opened, so only the daemon keeps
them (:func:`require_daemon`): a one-off run would open, read about zero
and put a false counter reset into the node's stream.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
import re
import resource
import struct
import weakref
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, Union

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows
from hpcperf_monitor.control import Control

log = logging.getLogger(__name__)

PMU_DIR = "sys/bus/event_source/devices"

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_COUNT_HW_REF_CPU_CYCLES = 9
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_FORMAT_TOTAL_TIME_ENABLED = 1
PERF_FORMAT_TOTAL_TIME_RUNNING = 2
PERF_FLAG_FD_CLOEXEC = 8
PERF_ATTR_SIZE_VER5 = 112

#: ``perf_event_open`` by ``platform.machine()``; other machines: unavailable
SYSCALL_NUMBERS = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "ppc64": 319}

DAEMON_ONLY = ("perf counters are kept by the running daemon only "
               "(a one-off run would read counters it has just opened)")

#: errnos that mean "this kernel/CPU has no such event", not "not allowed"
UNSUPPORTED = frozenset({errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV})

_REGISTERS = ("config", "config1", "config2")


# --- sysfs: PMU formats, events, CPU lists --------------------------------------------


@dataclass(frozen=True)
class FormatField:
    """Where a term's bits go: ``config:0-7,32-35`` -> ("config", ((0, 7), (32, 35)))."""

    register: str
    ranges: tuple[tuple[int, int], ...]

    def place(self, value: int) -> int:
        """``value``'s bits spread over the ranges, lowest bits into the lowest range."""
        out = 0
        for low, high in sorted(self.ranges):
            width = high - low + 1
            out |= (value & ((1 << width) - 1)) << low
            value >>= width
        if value:
            raise ValueError(f"value too wide for {self.register}:{self.ranges}")
        return out


def parse_format(text: str) -> FormatField:
    """A ``format/<term>`` file: ``config:0-7``, ``config:18``, ``config1:0-63``, split ranges."""
    register, _, bits = text.strip().partition(":")
    if register not in _REGISTERS or not bits:
        raise ValueError(f"not a perf format: {text.strip()!r}")
    ranges = []
    for part in bits.split(","):
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return FormatField(register, tuple(ranges))


def _number(text: str) -> int:
    text = text.strip()
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def encode(event: str, formats: dict[str, FormatField]) -> tuple[int, int, int]:
    """``event=0x04,umask=0x03`` -> (config, config1, config2); a bare term means 1."""
    regs = dict.fromkeys(_REGISTERS, 0)
    for term in event.split(","):
        name, eq, raw = term.strip().partition("=")
        if not name:
            continue
        value = _number(raw) if eq else 1
        if name in regs:  # some events are written as raw config=0x...
            regs[name] |= value
        elif name in formats:
            regs[formats[name].register] |= formats[name].place(value)
        else:
            raise ValueError(f"term {name!r} of {event!r} has no format")
    return regs["config"], regs["config1"], regs["config2"]


def parse_cpulist(text: str) -> list[int]:
    """``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11] (``online``, ``cpumask``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def online_cpus(root: Path) -> list[int]:
    path = root / "sys/devices/system/cpu/online"
    try:
        cpus = parse_cpulist(path.read_text())
    except (OSError, ValueError) as exc:
        raise CollectorUnavailable(f"{path}: {exc}") from None
    if not cpus:
        raise CollectorUnavailable(f"{path}: no online CPU")
    return cpus


#: bytes per ``.unit`` of an event (uncore memory events say MiB)
UNIT_BYTES = {"B": 1, "bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30,
              "KB": 10**3, "MB": 10**6, "GB": 10**9}


@dataclass(frozen=True)
class EventSpec:
    """What ``perf_event_open`` is asked for; ``name`` is for messages only."""

    type: int
    config: int
    config1: int = 0
    config2: int = 0
    name: str = ""


class Pmu:
    """One PMU's sysfs description."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        try:
            self.type = int((path / "type").read_text())
        except (OSError, ValueError) as exc:
            raise CollectorUnavailable(f"{path / 'type'}: {exc}") from None
        self.formats: dict[str, FormatField] = {}
        for f in sorted((path / "format").glob("*")):
            try:
                self.formats[f.name] = parse_format(f.read_text())
            except (OSError, ValueError):
                continue  # a term we cannot read is one we do not use

    def cpus(self) -> list[int]:
        """CPUs to open this (uncore) PMU's events on: one per socket or die."""
        try:
            return parse_cpulist((self.path / "cpumask").read_text())
        except (OSError, ValueError):
            return []

    def has_event(self, name: str) -> bool:
        return (self.path / "events" / name).is_file()

    def event(self, name: str) -> EventSpec:
        """A named event of ``events/``, encoded."""
        path = self.path / "events" / name
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise CollectorUnavailable(f"{path}: {exc.strerror or exc}") from None
        return self.spec(text, name)

    def spec(self, event: str, name: str = "") -> EventSpec:
        """An event string of this PMU, encoded with its formats."""
        try:
            config, config1, config2 = encode(event, self.formats)
        except ValueError as exc:
            raise CollectorUnavailable(f"{self.path}: cannot encode {event!r}: {exc}") from None
        return EventSpec(self.type, config, config1, config2, f"{self.name}/{name or event}/")

    def bytes_per_count(self, name: str, default: Fraction | None = None) -> Fraction:
        """``.scale`` x ``.unit`` of an event in bytes, exactly (6.103515625e-5 MiB = 64 B).

        Without a ``.unit`` file: ``default``, or unavailable when there is none.
        """
        events = self.path / "events"
        try:
            unit = (events / f"{name}.unit").read_text().strip()
        except OSError:
            if default is None:
                raise CollectorUnavailable(
                    f"{events / name}: no .unit to turn counts into bytes") from None
            return default
        try:
            scale = Fraction((events / f"{name}.scale").read_text().strip())
        except OSError:
            scale = Fraction(1)
        except ValueError as exc:
            raise CollectorUnavailable(f"{events / name}.scale: {exc}") from None
        if unit not in UNIT_BYTES:
            raise CollectorUnavailable(f"{events / name}: unit {unit!r} is not a byte unit")
        return scale * UNIT_BYTES[unit]


def pmus(root: Path) -> dict[str, Path]:
    """``{name: dir}`` of every PMU the kernel lists."""
    try:
        return {p.name: p for p in sorted((root / PMU_DIR).iterdir())}
    except OSError:
        return {}


# --- the CPU and its FP-operation events ----------------------------------------------


@dataclass(frozen=True)
class CpuModel:
    vendor: str
    family: int
    model: int

    def __str__(self) -> str:
        return f"{self.vendor or 'unknown vendor'} family {self.family:#x} model {self.model:#x}"


def cpu_model(root: Path) -> CpuModel:
    """Vendor, family and model of the first processor in ``/proc/cpuinfo``."""
    path = root / "proc/cpuinfo"
    try:
        text = path.read_text()
    except OSError as exc:
        raise CollectorUnavailable(f"{path}: {exc.strerror or exc}") from None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # first processor only
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    try:
        return CpuModel(fields.get("vendor_id", ""), int(fields.get("cpu family", "0")),
                        int(fields.get("model", "0")))
    except ValueError:
        return CpuModel(fields.get("vendor_id", ""), 0, 0)


#: Intel FP_ARITH_INST_RETIRED (event 0xc7): umask bits whose instructions do
#: the same number of operations per count, OR-ed into one event (Intel
#: documents SCALAR=0x03, 4_FLOPS=0x18, 8_FLOPS=0x60) so that 5 counters do
#: instead of 8. FMA instructions count twice, so weight x count is FLOPs.
_INTEL_FP_AVX2 = (("event=0xc7,umask=0x03", 1),   # scalar double + single
                  ("event=0xc7,umask=0x04", 2),   # 128-bit packed double
                  ("event=0xc7,umask=0x18", 4),   # 128b packed single + 256b packed double
                  ("event=0xc7,umask=0x20", 8))   # 256-bit packed single
_INTEL_FP_AVX512 = _INTEL_FP_AVX2[:3] + (
    ("event=0xc7,umask=0x60", 8),    # 256b packed single + 512b packed double
    ("event=0xc7,umask=0x80", 16))   # 512-bit packed single

#: family 6 models with FP_ARITH_INST_RETIRED and a plain ``cpu`` core PMU
_INTEL_MODELS = {
    **dict.fromkeys((0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6), _INTEL_FP_AVX2),  # Skylake client..
    **dict.fromkeys((0x55,), _INTEL_FP_AVX512),              # Skylake/Cascade/Cooper Lake-SP
    **dict.fromkeys((0x6A, 0x6C, 0x7D, 0x7E), _INTEL_FP_AVX512),  # Ice Lake SP, client
    **dict.fromkeys((0x8C, 0x8D, 0xA7), _INTEL_FP_AVX512),   # Tiger Lake, Rocket Lake
    **dict.fromkeys((0x8F, 0xCF, 0xAD, 0xAE), _INTEL_FP_AVX512),  # Sapphire/Emerald/Granite R.
}


def _amd_fp_umask(family: int, model: int) -> int | None:
    """PMCx003 (retired SSE/AVX FLOPs) "all" umask by Zen generation (perf's JSON tables)."""
    if family == 0x17:  # Zen 1, Zen 2
        return 0xFF
    if family == 0x19:  # Zen 3 models 00-0f, 20-5f; the rest Zen 4 (0x10: bfloat16 MACs)
        return 0xFF if model < 0x10 or 0x20 <= model <= 0x5F else 0x1F
    if family == 0x1A:  # Zen 5
        return 0x0F
    return None


def fp_events(cpu: CpuModel) -> tuple[tuple[str, int], ...] | None:
    """(core PMU event string, FLOPs per count) that sum to FLOPs; None: none known.

    AMD's PMCx003 counts FLOPs itself (a multiply-add as 2) and can add up to
    64 per cycle, beyond one counter's 15: since Linux 5.7 the kernel pairs
    it with the merge event (PMCx0FF) on the odd counter by itself.
    """
    if cpu.vendor == "GenuineIntel" and cpu.family == 6:
        return _INTEL_MODELS.get(cpu.model)
    if cpu.vendor == "AuthenticAMD":
        umask = _amd_fp_umask(cpu.family, cpu.model)
        return None if umask is None else ((f"event=0x03,umask={umask:#04x}", 1),)
    return None


# --- the syscall -------------------------------------------------------------------------


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to PERF_ATTR_SIZE_VER5; flags as one 64-bit word."""

    _fields_ = [
        ("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64), ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64), ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32), ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64), ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16), ("reserved_2", ctypes.c_uint16),
    ]


def make_attr(spec: EventSpec) -> PerfEventAttr:
    """A counting (not sampling) event, enabled at once, all privilege levels.

    Every flag stays 0: uncore PMUs refuse any ``exclude_*`` bit, and a
    system-wide per-CPU event has nothing to inherit.
    """
    attr = PerfEventAttr()
    attr.type, attr.size = spec.type, ctypes.sizeof(PerfEventAttr)
    attr.config, attr.config1, attr.config2 = spec.config, spec.config1, spec.config2
    attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING
    return attr


Reading = tuple[int, int, int]  # value, time enabled, time running (ns)


class Kernel(Protocol):
    """What the collectors need of perf; tests pass a fake."""

    def open(self, spec: EventSpec, cpu: int) -> int: ...  # raises OSError

    def read(self, handle: int) -> Reading: ...

    def close(self, handle: int) -> None: ...


class SyscallKernel:
    """``perf_event_open(attr, pid=-1, cpu, group_fd=-1, FD_CLOEXEC)``: one CPU, all tasks."""

    def __init__(self) -> None:
        self._syscall = None
        self._nr = 0
        self._raised_nofile = False

    def _function(self):
        if self._syscall is None:
            machine = platform.machine()
            if machine not in SYSCALL_NUMBERS:
                raise CollectorUnavailable(f"perf_event_open: machine {machine!r} not supported")
            syscall = ctypes.CDLL(None, use_errno=True).syscall
            syscall.restype = ctypes.c_long
            self._nr, self._syscall = SYSCALL_NUMBERS[machine], syscall
        return self._syscall

    def open(self, spec: EventSpec, cpu: int) -> int:
        syscall, attr = self._function(), make_attr(spec)
        while True:
            fd = syscall(ctypes.c_long(self._nr), ctypes.byref(attr), ctypes.c_long(-1),
                         ctypes.c_long(cpu), ctypes.c_long(-1),
                         ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err == errno.EMFILE and self._raise_nofile():
                continue  # events x CPUs can pass systemd's soft limit of 1024
            raise OSError(err, os.strerror(err))

    def _raise_nofile(self) -> bool:
        """Lift the soft open-files limit to the hard one, once."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if self._raised_nofile or soft == hard:
            return False
        self._raised_nofile = True
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return True

    def read(self, handle: int) -> Reading:
        data = os.read(handle, 24)
        if len(data) != 24:
            raise OSError(errno.EIO, f"short read of a perf event ({len(data)} bytes)")
        return struct.unpack("=QQQ", data)

    def close(self, handle: int) -> None:
        os.close(handle)


def paranoid(root: Path) -> str:
    try:
        return (root / "proc/sys/kernel/perf_event_paranoid").read_text().strip()
    except OSError:
        return "unknown"


_HINTS = {
    errno.ENOENT: "this kernel has no such event on this CPU (a VM without a virtual PMU?)",
    errno.EOPNOTSUPP: "the PMU does not support this kind of event",
    errno.ENODEV: "no such PMU, or the CPU is offline",
    errno.EINVAL: "the kernel rejects this event's encoding",
    errno.EBUSY: "the counters are held exclusively by another tool",
    errno.EMFILE: "too many open files: raise the service's LimitNOFILE",
}


def open_error(exc: OSError, spec: EventSpec, cpu: int, root: Path) -> str:
    """One line: which event, the errno by name, and what it usually means."""
    code = exc.errno or 0
    what = (f"perf_event_open({spec.name or spec.config} on CPU {cpu}): "
            f"{errno.errorcode.get(code, code)} ({os.strerror(code)})")
    if code in (errno.EACCES, errno.EPERM):
        hint = (f"perf_event_paranoid is {paranoid(root)}; the monitor needs root or "
                "CAP_PERFMON (or perf_event_paranoid <= 0)")
    else:
        hint = _HINTS.get(code, "")
    return f"{what}: {hint}" if hint else what


# --- counters ------------------------------------------------------------------------------


class Counter:
    """One open event: a monotonic total since it was opened.

    Each read adds the raw increase scaled by (enabled / running) over the
    interval since the last read: when the kernel multiplexes, the event ran
    only part of the time and the rest is estimated from that part. An
    interval in which the event never ran adds nothing (it cannot be
    estimated). Unscaled counts stay exact integers.
    """

    def __init__(self, kernel: Kernel, handle: int) -> None:
        self.kernel, self.handle = kernel, handle
        self.last: Reading = (0, 0, 0)
        self.total = 0

    def read(self) -> int:
        value, enabled, running = now = self.kernel.read(self.handle)
        d_value = max(0, value - self.last[0])
        d_enabled, d_running = enabled - self.last[1], running - self.last[2]
        self.last = now
        if d_running <= 0:
            return self.total
        if d_enabled > d_running:
            d_value = (d_value * d_enabled + d_running // 2) // d_running
        self.total += d_value
        return self.total


def _close_all(kernel: Kernel, handles: list) -> None:
    while handles:
        try:
            kernel.close(handles.pop())
        except OSError:
            pass


class Counters:
    """The events one collector holds open, closed together (or when dropped)."""

    def __init__(self, kernel: Kernel, root: Path) -> None:
        self.kernel, self.root = kernel, root
        self._handles: list = []
        self._finalizer = weakref.finalize(self, _close_all, kernel, self._handles)

    def open(self, spec: EventSpec, cpu: int) -> Counter:
        try:
            handle = self.kernel.open(spec, cpu)
        except OSError as exc:
            raise CollectorUnavailable(open_error(exc, spec, cpu, self.root)) from None
        self._handles.append(handle)
        return Counter(self.kernel, handle)

    def supported(self, spec: EventSpec, cpu: int) -> bool:
        """Whether ``spec`` opens on ``cpu``; False for "no such event", raises otherwise."""
        try:
            handle = self.kernel.open(spec, cpu)
        except OSError as exc:
            if exc.errno in UNSUPPORTED:
                return False
            raise CollectorUnavailable(open_error(exc, spec, cpu, self.root)) from None
        self.kernel.close(handle)
        return True

    def close(self) -> None:
        self._finalizer()


def require_daemon(state_dir: Path | None) -> None:
    """Raise unless this process is the host's daemon (it wrote ``daemon.pid``)."""
    if state_dir is None:
        raise CollectorUnavailable(DAEMON_ONLY)
    try:
        pid = int(Control(Path(state_dir)).pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise CollectorUnavailable(DAEMON_ONLY) from None
    if pid != os.getpid():
        raise CollectorUnavailable(DAEMON_ONLY)


#: per device, per schema column: (weight, counter) whose weighted sum is the value
Plan = dict[str, list[list[tuple[Union[int, Fraction], Counter]]]]


class PerfCollector:
    """Opens its events at the daemon's first sample and keeps them open.

    Subclasses say what to open in :meth:`plan`. When that fails, the
    reason is logged once and every later call raises it again, so a node
    without the hardware (or the permission) writes no rows, never zeros.
    """

    TYPE = ""

    def __init__(self, state_dir: Path | None = None, kernel: Kernel | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        self.kernel: Kernel = kernel if kernel is not None else SyscallKernel()
        self._counters: Counters | None = None
        self._plan: Plan | None = None
        self._failed: str | None = None

    def plan(self, root: Path, counters: Counters) -> Plan:
        raise NotImplementedError

    def __call__(self, root: Path) -> Rows:
        if self._failed is not None:
            raise CollectorUnavailable(self._failed)
        if self._plan is None:
            require_daemon(self.state_dir)
            counters = Counters(self.kernel, Path(root))
            try:
                self._plan = self.plan(Path(root), counters)
            except CollectorUnavailable as exc:
                counters.close()
                self._failed = str(exc)
                log.warning("%s unavailable: %s", self.TYPE, exc)
                raise
            self._counters = counters
        try:
            return {device: tuple(round(sum(w * c.read() for w, c in terms)) for terms in columns)
                    for device, columns in self._plan.items()}
        except OSError as exc:
            raise CollectorUnavailable(f"reading perf counters: {exc}") from None

    def close(self) -> None:
        """Close the events; a later call opens them again (a new counter series)."""
        if self._counters is not None:
            self._counters.close()
        self._counters = self._plan = None


_NUMBERED = re.compile(r"^(.*?)(?:_(\d+))?$")


def pmu_order(name: str) -> tuple[str, int]:
    """Sort key: ``uncore_imc_10`` after ``uncore_imc_2``."""
    match = _NUMBERED.match(name)
    assert match is not None
    return match.group(1), int(match.group(2) or -1)
