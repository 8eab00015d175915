"""Copy the files the collectors read into a directory, as a test tree.

``python -m hpcperf_monitor.record DEST`` records this node, so a site can
send a tree that reproduces a collector problem, and our tests run on real
kernels' files (``tests/fixtures/nodetree`` was made this way). Symlinked
sysfs directories are copied as plain ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: every file a collector or the header reads, as globs under the root
SOURCES = (
    "proc/stat", "proc/meminfo", "proc/vmstat", "proc/diskstats", "proc/loadavg",
    "proc/uptime", "proc/sys/kernel/hostname", "proc/sys/kernel/ostype",
    "proc/sys/kernel/osrelease", "proc/sys/kernel/version", "proc/sys/kernel/arch",
    "sys/devices/system/node/node*/meminfo", "sys/devices/system/node/node*/numastat",
    "sys/class/net/*/statistics/*",
    # pmc, imc: the CPU and the perf PMUs the kernel describes
    "proc/cpuinfo", "proc/sys/kernel/perf_event_paranoid", "sys/devices/system/cpu/online",
    "sys/bus/event_source/devices/*/type", "sys/bus/event_source/devices/*/cpumask",
    "sys/bus/event_source/devices/*/format/*", "sys/bus/event_source/devices/*/events/*",
)


def record_tree(dest: Path, root: Path = Path("/")) -> list[Path]:
    """Copy the :data:`SOURCES` under ``root`` to ``dest``; returns the files written."""
    written = []
    for pattern in SOURCES:
        for src in sorted(root.glob(pattern)):
            target = dest / src.relative_to(root)
            try:
                data = src.read_bytes()
            except OSError:
                continue  # unreadable counters (driver errors) are left out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m hpcperf_monitor.record DEST [ROOT]", file=sys.stderr)
        return 2
    files = record_tree(Path(args[0]), Path(args[1]) if len(args) == 2 else Path("/"))
    print(f"recorded {len(files)} files into {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
