"""The NVML collectors (``nvidia_gpu``, ``nvidia_mig``) against a fake ``pynvml``.

No GPU here, and nvidia-ml-py is an optional extra, so the collectors'
logic is tested with :class:`FakeNvml`, a stand-in for the ``pynvml``
module with nvidia-ml-py's names, constants, error codes and messages;
``test_fake_is_faithful_to_nvidia_ml_py`` checks them against the real
package where it is installed. The fake keeps NVML's reference count and
refuses device calls outside init/shutdown, so leaks and use-after-shutdown
fail the tests.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hpcperf_monitor import schemas
from hpcperf_monitor.cli import take
from hpcperf_monitor.collectors import (
    FACTORIES,
    REGISTRY,
    CollectorUnavailable,
    build,
    nvidia_gpu,
    nvidia_mig,
    nvml,
)
from hpcperf_monitor.framing import Framer
from hpcperf_monitor.rawformat import read_raw
from hpcperf_monitor.sampler import Sampler
from hpcperf_monitor.state import HostState

GiB = 1 << 30

#: nvidia-ml-py's error codes and messages (pynvml.NVMLError._errcode_to_string)
ERRORS = {
    "Uninitialized": (1, "Uninitialized"),
    "InvalidArgument": (2, "Invalid Argument"),
    "NotSupported": (3, "Not Supported"),
    "NoPermission": (4, "Insufficient Permissions"),
    "NotFound": (6, "Not Found"),
    "DriverNotLoaded": (9, "Driver Not Loaded"),
    "LibraryNotFound": (12, "NVML Shared Library Not Found"),
    "GpuIsLost": (15, "GPU is lost"),
}

#: the constants the collectors use, with nvidia-ml-py's values
CONSTANTS = {
    "NVML_TEMPERATURE_GPU": 0,
    "NVML_CLOCK_GRAPHICS": 0,
    "NVML_CLOCK_SM": 1,
    "NVML_CLOCK_MEM": 2,
    "NVML_DEVICE_MIG_DISABLE": 0,
    "NVML_DEVICE_MIG_ENABLE": 1,
}


class NVMLError(Exception):
    """As nvidia-ml-py's: ``value`` is the NVML return code, str() its message."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {code: text for code, text in ERRORS.values()}[self.value]


def _error_class(name: str, code: int) -> type[NVMLError]:
    def init(self: NVMLError) -> None:  # raised as NVMLError_NotSupported(), no argument
        NVMLError.__init__(self, code)
    return type(f"NVMLError_{name}", (NVMLError,), {"__init__": init})


ERROR_CLASSES = {name: _error_class(name, code) for name, (code, _) in ERRORS.items()}
Err = ERROR_CLASSES
#: a reading: a number, or the NVML error the call raises
Reading = int | type


@dataclass
class Mig:
    gi: int
    ci: int
    used: int
    total: int
    sms: int


@dataclass
class Gpu:
    util: Reading = 0
    used: int = 0
    total: int = 80 * GiB
    power: Reading = 0
    energy: Reading = 0
    temp: Reading = 0
    sm_clock: Reading = 0
    minor: int | None = None  # None: the same as the index
    mig_mode: Reading = 0  # NVML_DEVICE_MIG_DISABLE, or NotSupported before Ampere
    slots: list = field(default_factory=list)  # Mig or None (empty slot), 7 on an A100


@dataclass
class Handle:
    """What a ``c_nvmlDevice_t`` stands for: a GPU, or a MIG device of one."""

    gpu: Gpu
    mig: Mig | None = None


@dataclass
class Utilization:
    gpu: int
    memory: int


@dataclass
class Memory:
    total: int
    free: int
    used: int


@dataclass
class Attributes:
    multiprocessorCount: int  # nvidia-ml-py's field names
    memorySizeMB: int


class FakeNvml:
    """The part of ``pynvml`` the collectors call, over a list of :class:`Gpu`."""

    def __init__(self, gpus: list[Gpu], init_error: type | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.refcount = 0
        self.inits = 0

    def module(self) -> ModuleType:
        mod = ModuleType("pynvml")
        mod.NVMLError = NVMLError
        for name, cls in ERROR_CLASSES.items():
            setattr(mod, f"NVMLError_{name}", cls)
        for name, val in CONSTANTS.items():
            setattr(mod, name, val)
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(mod, name, getattr(self, name))
        return mod

    def _ready(self) -> None:
        if self.refcount == 0:
            raise Err["Uninitialized"]()

    @staticmethod
    def _read(reading: Reading) -> int:
        if isinstance(reading, type):
            raise reading()
        return reading

    def _whole(self, handle: Handle) -> Gpu:
        """The GPU of a handle that must not be a MIG device's."""
        self._ready()
        if handle.mig is not None:
            raise Err["NotSupported"]()
        return handle.gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.refcount += 1
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self._ready()
        self.refcount -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._ready()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Handle:
        self._ready()
        if not 0 <= index < len(self.gpus):
            raise Err["InvalidArgument"]()
        return Handle(self.gpus[index])

    def nvmlDeviceGetMinorNumber(self, handle: Handle) -> int:
        gpu = self._whole(handle)
        return self.gpus.index(gpu) if gpu.minor is None else gpu.minor

    def nvmlDeviceGetUtilizationRates(self, handle: Handle) -> Utilization:
        gpu = self._whole(handle)
        if gpu.mig_mode == CONSTANTS["NVML_DEVICE_MIG_ENABLE"]:
            raise Err["NotSupported"]()  # no whole-GPU utilisation in MIG mode
        return Utilization(gpu=self._read(gpu.util), memory=7)

    def nvmlDeviceGetMemoryInfo(self, handle: Handle, version: Any = None) -> Memory:
        self._ready()
        if handle.mig is not None:
            m = handle.mig
            return Memory(total=m.total, free=m.total - m.used, used=m.used)
        g = handle.gpu
        return Memory(total=g.total, free=g.total - g.used, used=g.used)

    def nvmlDeviceGetPowerUsage(self, handle: Handle) -> int:
        return self._read(self._whole(handle).power)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Handle) -> int:
        return self._read(self._whole(handle).energy)

    def nvmlDeviceGetTemperature(self, handle: Handle, sensor: int) -> int:
        if sensor != CONSTANTS["NVML_TEMPERATURE_GPU"]:
            raise Err["InvalidArgument"]()
        return self._read(self._whole(handle).temp)

    def nvmlDeviceGetClockInfo(self, handle: Handle, type: int) -> int:
        sm = self._read(self._whole(handle).sm_clock)
        # other clock domains differ, so a wrong constant shows in the rows
        return {CONSTANTS["NVML_CLOCK_GRAPHICS"]: sm + 1, CONSTANTS["NVML_CLOCK_SM"]: sm,
                CONSTANTS["NVML_CLOCK_MEM"]: 2619}[type]

    def nvmlDeviceGetMigMode(self, device: Handle) -> list[int]:
        mode = self._read(self._whole(device).mig_mode)
        return [mode, mode]  # [current, pending]

    def nvmlDeviceGetMaxMigDeviceCount(self, device: Handle) -> int:
        return len(self._whole(device).slots)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: Handle, index: int) -> Handle:
        gpu = self._whole(device)
        if not 0 <= index < len(gpu.slots):
            raise Err["InvalidArgument"]()
        if gpu.slots[index] is None:
            raise Err["NotFound"]()
        return Handle(gpu, gpu.slots[index])

    def _mig(self, handle: Handle) -> Mig:
        self._ready()
        if handle.mig is None:
            raise Err["InvalidArgument"]()
        return handle.mig

    def nvmlDeviceGetGpuInstanceId(self, device: Handle) -> int:
        return self._mig(device).gi

    def nvmlDeviceGetComputeInstanceId(self, device: Handle) -> int:
        return self._mig(device).ci

    def nvmlDeviceGetAttributes(self, device: Handle) -> Attributes:
        mig = self._mig(device)
        return Attributes(multiprocessorCount=mig.sms, memorySizeMB=mig.total >> 20)


@pytest.fixture(autouse=True)
def _logs_reach_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI stops propagation at 'hpcperf_monitor' once it has run in-process."""
    monkeypatch.setattr(logging.getLogger("hpcperf_monitor"), "propagate", True)


#: where the driver is looked for on a real node (the fixture moves it)
REAL_DRIVER = nvml.DRIVER


@pytest.fixture(autouse=True)
def driver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A loaded NVIDIA driver, as far as ``nvml.load`` looks (this machine has none)."""
    version = tmp_path / "proc/driver/nvidia/version"
    version.parent.mkdir(parents=True)
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15\n")
    monkeypatch.setattr(nvml, "DRIVER", version)
    return version


def install(monkeypatch: pytest.MonkeyPatch, gpus: list[Gpu], **kw: Any) -> FakeNvml:
    fake = FakeNvml(gpus, **kw)
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    return fake


def two_gpus() -> list[Gpu]:
    return [
        Gpu(util=87, used=30 * GiB, power=312_450, energy=9_876_543_210, temp=61,
            sm_clock=1410),
        Gpu(util=0, used=512 << 20, power=61_000, energy=1_234_567, temp=33, sm_clock=210),
    ]


def a100_with_mig() -> Gpu:
    """GPU 0 split into a 3g.40gb (GI 1) and a 2g.20gb (GI 5); 7 slots, 5 empty."""
    return Gpu(
        util=99,  # never read: NVML has no whole-GPU utilisation in MIG mode
        used=(10 + 4) * GiB,  # NVML's parent memory: the sum over its instances
        power=250_000, energy=5_000_000, temp=55, sm_clock=1275,
        mig_mode=CONSTANTS["NVML_DEVICE_MIG_ENABLE"],
        slots=[Mig(gi=1, ci=0, used=10 * GiB, total=40 * GiB, sms=42), None,
               Mig(gi=5, ci=0, used=4 * GiB, total=20 * GiB, sms=28), None, None, None, None],
    )


def test_two_gpus_exact_rows(monkeypatch: pytest.MonkeyPatch):
    fake = install(monkeypatch, two_gpus())
    assert nvidia_gpu.collect() == {
        "0": (87, 30 * GiB, 80 * GiB, 312_450, 9_876_543_210, 61, 1410),
        "1": (0, 512 << 20, 80 * GiB, 61_000, 1_234_567, 33, 210),
    }
    assert fake.inits == 1 and fake.refcount == 0  # one-off read: init, read, shutdown
    assert len(schemas.NVIDIA_GPU.events) == 7


def test_mig_gpu_keeps_its_row_and_instances_are_their_own_type(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    gpu1 = two_gpus()[1]
    gpu1.mig_mode = Err["NotSupported"]  # a pre-Ampere GPU beside the A100
    install(monkeypatch, [a100_with_mig(), gpu1])
    with caplog.at_level(logging.WARNING):
        rows = nvidia_gpu.collect()
    # parent: utilisation written as 0 (NotSupported in MIG mode), memory = instances' sum
    assert rows["0"] == (0, 14 * GiB, 80 * GiB, 250_000, 5_000_000, 55, 1275)
    assert rows["1"][0] == 0 and rows["1"][1] == 512 << 20
    assert [r.getMessage() for r in caplog.records] == [
        "GPU 0: utilization: Not Supported; written as 0"]
    assert nvidia_mig.collect() == {
        "0.1.0": (10 * GiB, 40 * GiB, 42),
        "0.5.0": (4 * GiB, 20 * GiB, 28),
    }
    assert len(schemas.NVIDIA_MIG.events) == 3


def test_energy_not_supported_is_zero_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    gpus = two_gpus()
    gpus[1].energy = Err["NotSupported"]  # e.g. a Pascal GPU: no energy counter before Volta
    install(monkeypatch, gpus)
    collect = nvidia_gpu.NvidiaGpu()
    with caplog.at_level(logging.WARNING):
        first, second = collect(Path("/")), collect(Path("/"))
    collect.close()
    assert first == second
    assert first["1"] == (0, 512 << 20, 80 * GiB, 61_000, 0, 33, 210)
    assert first["0"][4] == 9_876_543_210  # the other GPU keeps its counter
    assert [r.getMessage() for r in caplog.records] == [
        "GPU 1: energy: Not Supported; written as 0"]
    assert caplog.records[0].levelno == logging.WARNING


@pytest.mark.parametrize("module", [nvidia_gpu, nvidia_mig])
def test_without_nvidia_ml_py_unavailable(monkeypatch: pytest.MonkeyPatch, module):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    with pytest.raises(CollectorUnavailable, match="^nvidia-ml-py not installed"):
        module.collect()


@pytest.mark.parametrize("module", [nvidia_gpu, nvidia_mig])
def test_without_the_driver_pynvml_is_not_even_imported(
        monkeypatch: pytest.MonkeyPatch, driver: Path, module):
    driver.unlink()
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    with pytest.raises(CollectorUnavailable) as info:
        module.collect()
    assert str(info.value) == f"no NVIDIA driver loaded ({driver} is absent)"
    assert "pynvml" not in sys.modules


@pytest.mark.parametrize("error, message", [
    ("LibraryNotFound", "NVML: NVML Shared Library Not Found"),
    ("DriverNotLoaded", "NVML: Driver Not Loaded"),
])
@pytest.mark.parametrize("module", [nvidia_gpu, nvidia_mig])
def test_nvml_init_failure_unavailable_with_its_message(
        monkeypatch: pytest.MonkeyPatch, module, error: str, message: str):
    install(monkeypatch, two_gpus(), init_error=Err[error])
    with pytest.raises(CollectorUnavailable) as info:
        module.collect()
    assert str(info.value) == message


def test_no_gpu_unavailable_and_nvml_shut_down(monkeypatch: pytest.MonkeyPatch):
    fake = install(monkeypatch, [])
    with pytest.raises(CollectorUnavailable, match="^NVML: no GPU$"):
        nvidia_gpu.collect()
    assert fake.refcount == 0


def test_no_mig_instances_unavailable(monkeypatch: pytest.MonkeyPatch):
    gpus = two_gpus()
    gpus[1].mig_mode = Err["NotSupported"]
    install(monkeypatch, gpus)
    with pytest.raises(CollectorUnavailable, match="no MIG instances"):
        nvidia_mig.collect()


def test_sampler_collectors_keep_nvml_open_and_see_new_instances(
        monkeypatch: pytest.MonkeyPatch):
    gpu = a100_with_mig()
    fake = install(monkeypatch, [gpu])
    collectors = build(["nvidia_gpu", "nvidia_mig"], None)
    assert isinstance(collectors["nvidia_gpu"], nvidia_gpu.NvidiaGpu)
    assert isinstance(collectors["nvidia_mig"], nvidia_mig.NvidiaMig)
    assert set(collectors["nvidia_mig"](Path("/"))) == {"0.1.0", "0.5.0"}
    gpu.slots[1] = Mig(gi=2, ci=0, used=0, total=20 * GiB, sms=28)  # an admin adds one
    assert set(collectors["nvidia_mig"](Path("/"))) == {"0.1.0", "0.2.0", "0.5.0"}
    collectors["nvidia_gpu"](Path("/"))
    collectors["nvidia_gpu"](Path("/"))
    assert fake.inits == 2 and fake.refcount == 2  # once per collector, not per sample
    for collector in collectors.values():
        collector.close()
    assert fake.refcount == 0
    collectors["nvidia_gpu"].close()  # a second close does not shut down twice
    assert fake.refcount == 0


def test_lost_gpu_drops_only_its_row(monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture):
    gpus = two_gpus()
    gpus[1].util = Err["GpuIsLost"]
    install(monkeypatch, gpus)
    collect = nvidia_gpu.NvidiaGpu()
    with caplog.at_level(logging.ERROR):
        assert list(collect(Path("/"))) == ["0"]
        assert list(collect(Path("/"))) == ["0"]
    assert [r.getMessage() for r in caplog.records] == ["GPU 1 not read: GPU is lost"]
    gpus[0].power = Err["GpuIsLost"]
    with pytest.raises(CollectorUnavailable, match="GPU 0: GPU is lost; GPU 1: GPU is lost"):
        collect(Path("/"))
    collect.close()


def test_minor_number_unlike_index_is_told_once(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture):
    gpus = two_gpus()
    gpus[0].minor, gpus[1].minor = 1, 0  # /dev/nvidia0 is NVML's GPU 1
    install(monkeypatch, gpus)
    collect = nvidia_gpu.NvidiaGpu()
    with caplog.at_level(logging.WARNING):
        collect(Path("/"))
        collect(Path("/"))
    collect.close()
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2 and told[0].startswith("GPU 0 is /dev/nvidia1: ")


def test_sample_text_has_gpu_schemas_rows_and_job_marks(
        monkeypatch: pytest.MonkeyPatch, tree4: Path, tmp_path: Path):
    install(monkeypatch, [a100_with_mig(), two_gpus()[0]])
    state = HostState(tmp_path, "g001")
    state.begin_job("4711", gpus="1")  # the prolog's SLURM_JOB_GPUS
    sampler = Sampler(tree4, types=["nvidia_gpu", "nvidia_mig"], state_dir=state.dir)
    sent: list[str] = []
    take(sampler, state, Framer(), lambda _seq, text: sent.append(text), "4711")
    text = sent[0]
    lines = text.splitlines()
    assert ("!nvidia_gpu utilization,U=% mem_used,U=B mem_total,U=B power,U=mW "
            "energy,E,U=mJ temperature sm_clock,U=MHz") in lines
    assert "!nvidia_mig mem_used,U=B mem_total,U=B sm_count" in lines
    assert f"nvidia_gpu 0 0 {14 * GiB} {80 * GiB} 250000 5000000 55 1275" in lines
    assert f"nvidia_gpu 1 87 {30 * GiB} {80 * GiB} 312450 9876543210 61 1410" in lines
    assert f"nvidia_mig 0.1.0 {10 * GiB} {40 * GiB} 42" in lines
    assert f"nvidia_mig 0.5.0 {4 * GiB} {20 * GiB} 28" in lines
    assert "%gpus 4711 1" in lines  # job 4711 has GPU 1: the nvidia_gpu row named "1"
    raw = read_raw(text)
    assert raw.issues == []
    assert raw.samples[0].rows["nvidia_mig"]["0.5.0"] == (4 * GiB, 20 * GiB, 28)
    for collector in sampler._collectors.values():
        collector.close()


def _nvml_works_here() -> bool:
    try:
        nvidia_gpu.collect()
    except CollectorUnavailable:
        return False
    return True


def test_this_node_without_gpu_skips_both_types(tree4: Path, tmp_path: Path, run_monitor,
                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(nvml, "DRIVER", REAL_DRIVER)
    if _nvml_works_here():
        pytest.skip("this node has a GPU that NVML reads")
    sample = Sampler(tree4, types=["nvidia_gpu", "nvidia_mig"], state_dir=tmp_path).sample()
    assert sample.rows == {} and list(sample.header.schemas) == []
    done = run_monitor("--once", "--stdout", "--root", str(tree4), "--state-dir",
                       str(tmp_path / "state"), "--collectors", "cpu,nvidia_gpu,nvidia_mig")
    assert done.returncode == 0, done.stderr
    raw = read_raw(done.stdout)
    assert raw.issues == [] and list(raw.headers[0].schemas) == ["cpu"]


def test_registered_with_a_stateful_factory():
    assert {"nvidia_gpu", "nvidia_mig"} <= set(REGISTRY) & set(FACTORIES)
    assert {"nvidia_gpu", "nvidia_mig"} <= set(schemas.ALL)


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is None,
                    reason="nvidia-ml-py (the monitor's gpu extra) not installed")
def test_fake_is_faithful_to_nvidia_ml_py():
    import pynvml as real

    for name, val in CONSTANTS.items():
        assert getattr(real, name) == val, name
    for name, cls in ERROR_CLASSES.items():
        real_cls = getattr(real, f"NVMLError_{name}")
        assert issubclass(real_cls, real.NVMLError)
        assert (real_cls().value, str(real_cls())) == (cls().value, str(cls())), name
    fake = FakeNvml([])
    for name in dir(fake):
        if name.startswith("nvml"):
            ours = inspect.signature(getattr(fake, name)).parameters
            theirs = inspect.signature(getattr(real, name)).parameters
            assert list(theirs) == list(ours), name
    assert {"gpu", "memory"} <= {f for f, _ in real.c_nvmlUtilization_t._fields_}
    assert {"total", "free", "used"} <= {f for f, _ in real.c_nvmlMemory_t._fields_}
    assert "multiprocessorCount" in {f for f, _ in real.c_nvmlDeviceAttributes._fields_}
