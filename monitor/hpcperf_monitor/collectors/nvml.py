"""The NVML session the GPU collectors share: init once, handles, field reads.

``nvidia-ml-py`` (module ``pynvml``) is the monitor's optional ``gpu``
extra, so it is imported here, lazily and only where the NVIDIA driver is
loaded: a node without the driver, without the extra or without GPUs
reports the GPU types unavailable, one line why.
NVML reads the driver, not files, so the collectors' ``root`` is not used.

Devices are named by their NVML index (``nvidia-smi``'s numbering, PCI bus
order). Slurm's ``SLURM_JOB_GPUS``, which the ``%gpus`` marks carry, holds
Slurm's GPU index: PCI bus order too with ``AutoDetect=nvml``, but the
order of the ``File=`` device files with a hand-written gres.conf, i.e. the
``/dev/nvidiaN`` minor numbers. Where a GPU's minor differs from its index
the two numberings can disagree, and the session says so once.

``nvmlInit`` is reference counted by NVML, so each collector keeps its own
:class:`Nvml`; ``close()`` (or garbage collection, or exit) shuts it down.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hpcperf_monitor.collectors.common import CollectorUnavailable, Rows

log = logging.getLogger(__name__)

#: ``(nvml, device name, handle) -> rows``: what a collector reads from one GPU
ReadGpu = Callable[["Nvml", str, Any], Rows]


#: made by the NVIDIA kernel module when loaded (and by the container toolkit)
DRIVER = Path("/proc/driver/nvidia/version")


def load() -> ModuleType:
    """The ``pynvml`` module; unavailable without the driver or nvidia-ml-py.

    The driver is looked for first: ``pynvml`` is some 4 MB of ctypes
    bindings, which a node without NVIDIA GPUs should not keep resident
    for nothing (the monitor's whole budget is 30 MB).
    """
    if not DRIVER.exists():
        raise CollectorUnavailable(f"no NVIDIA driver loaded ({DRIVER} is absent)")
    try:
        import pynvml
    except ImportError:
        raise CollectorUnavailable("nvidia-ml-py not installed (the gpu extra)") from None
    return pynvml


def _shutdown(nv: ModuleType) -> None:
    try:
        nv.nvmlShutdown()
    except nv.NVMLError as exc:
        log.debug("nvmlShutdown: %s", exc)


class Nvml:
    """One NVML initialisation and its GPU handles, kept between samples."""

    def __init__(self) -> None:
        self.nv: ModuleType | None = None
        #: ``(device name, handle)`` of each GPU, in NVML index order
        self.gpus: list[tuple[str, Any]] = []
        self._told: set[tuple] = set()
        self._finalizer: weakref.finalize | None = None

    def open(self) -> ModuleType:
        """``pynvml``, initialised; retried on every call until it works.

        A driver loaded after the daemon started is picked up at the next
        sample; no GPU at all is 'unavailable', not an empty type.
        """
        if self.nv is not None:
            return self.nv
        nv = load()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:  # LibraryNotFound, DriverNotLoaded, ...
            raise CollectorUnavailable(f"NVML: {exc}") from None
        try:
            gpus = self._handles(nv)
        except nv.NVMLError as exc:
            _shutdown(nv)
            raise CollectorUnavailable(f"NVML: {exc}") from None
        if not gpus:
            _shutdown(nv)
            raise CollectorUnavailable("NVML: no GPU")
        self.nv, self.gpus = nv, gpus
        self._finalizer = weakref.finalize(self, _shutdown, nv)
        return nv

    def _handles(self, nv: ModuleType) -> list[tuple[str, Any]]:
        gpus = []
        for index in range(nv.nvmlDeviceGetCount()):
            try:
                gpus.append((str(index), nv.nvmlDeviceGetHandleByIndex(index)))
            except nv.NVMLError as exc:  # e.g. no permission to it: the others still count
                log.warning("GPU %d left out: %s", index, exc)
        return gpus

    def check_numbering(self) -> None:
        """Warn once where a GPU's ``/dev/nvidiaN`` minor is not its NVML index."""
        nv = self.open()
        for device, handle in self.gpus:
            try:
                minor = nv.nvmlDeviceGetMinorNumber(handle)
            except nv.NVMLError:
                continue
            if str(minor) != device:
                self.once(logging.WARNING, ("minor", device),
                          "GPU %s is /dev/nvidia%d: if gres.conf lists GPUs by File= rather "
                          "than AutoDetect=nvml, Slurm's GPU numbers in %%gpus are not "
                          "NVML indices", device, minor)

    def close(self) -> None:
        """``nvmlShutdown`` (once); a later ``open`` initialises again."""
        if self._finalizer is not None:
            self._finalizer()
        self.nv, self.gpus, self._finalizer = None, [], None

    def once(self, level: int, key: tuple, msg: str, *args: object) -> None:
        """Log ``msg`` the first time ``key`` is seen in this session only."""
        if key not in self._told:
            self._told.add(key)
            log.log(level, msg, *args)

    def get(self, device: str, field: str, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)``, or None where this device cannot report ``field``.

        NVML answers NotSupported (and NoPermission, for some fields of a
        MIG-enabled GPU) per GPU model; the caller writes 0 for None, and the
        first time is logged so a fleet-wide 0 never goes unexplained.
        """
        nv = self.nv
        assert nv is not None, "open() first"
        try:
            return read(*args)
        except (nv.NVMLError_NotSupported, nv.NVMLError_NoPermission) as exc:
            self.once(logging.WARNING, (device, field),
                      "GPU %s: %s: %s; written as 0", device, field, exc)
            return None

    def rows(self, read_gpu: ReadGpu) -> Rows:
        """``read_gpu`` over every GPU; one failing GPU drops its rows only.

        A GPU that errors (lost, fallen off the bus) is left out of the
        sample, logged once per error; the pipeline then writes no host sum
        for that interval rather than a sum that misses a GPU.
        """
        nv = self.open()
        out: Rows = {}
        errors = []
        for device, handle in self.gpus:
            try:
                out.update(read_gpu(self, device, handle))
            except nv.NVMLError as exc:
                errors.append(f"GPU {device}: {exc}")
                self.once(logging.ERROR, (device, str(exc)), "GPU %s not read: %s", device, exc)
        if errors and not out:
            raise CollectorUnavailable("NVML: " + "; ".join(errors))
        return out


class NvmlCollector:
    """A GPU type's collector: keeps one :class:`Nvml` open between samples.

    ``state_dir`` is not needed (the factory signature every stateful
    collector shares); subclasses say what one call reads.
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self.nvml = Nvml()

    def __call__(self, root: Path) -> Rows:
        raise NotImplementedError

    def close(self) -> None:
        self.nvml.close()

    @classmethod
    def read_once(cls, root: Path) -> Rows:
        """One reading: NVML initialised, read and shut down again."""
        collector = cls()
        try:
            return collector(root)
        finally:
            collector.close()


def value(found: Any, attr: str | None = None) -> int:
    """An NVML reading (or one field of a struct) as int; 0 for None."""
    if found is None:
        return 0
    return int(getattr(found, attr) if attr else found)
