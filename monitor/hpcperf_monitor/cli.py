"""``hpcperf-monitor``: sample this node and publish (or print) raw stats.

Run as a daemon (systemd), it samples at wall-clock multiples of
``--interval`` so every node's samples line up. Slurm's prolog and epilog
run ``--begin J`` / ``--end J``: a sample now, with the mark line, and the
node's current job remembered for the daemon's samples. ``--once`` takes
one sample and exits. Settings come from ``HPCPERF_*`` variables too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hpcperf_monitor import __version__
from hpcperf_monitor.collectors import REGISTRY
from hpcperf_monitor.framing import Framer
from hpcperf_monitor.publisher import Publisher
from hpcperf_monitor.sampler import Sampler, hostname
from hpcperf_monitor.spool import Spool
from hpcperf_monitor.state import HostState

log = logging.getLogger("hpcperf_monitor")

Emit = Callable[[int, str], object]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"HPCPERF_{name}") or default


def default_state_dir() -> Path:
    """``/var/lib/hpcperfstats`` when we may write there (root), else per user."""
    system = Path("/var/lib/hpcperfstats")
    if os.access(system if system.exists() else system.parent, os.W_OK):
        return system
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hpcperfstats"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hpcperf-monitor", description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("/"),
                   help="read /proc and /sys under this directory (default /)")
    p.add_argument("--once", action="store_true", help="take one sample, then exit")
    p.add_argument("--stdout", action="store_true",
                   help="print messages instead of publishing them")
    p.add_argument("--amqp-url", default=_env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
                   help="broker URL (env HPCPERF_AMQP_URL)")
    p.add_argument("--cluster", default=_env("CLUSTER", "demo"),
                   help="cluster name = queue name (env HPCPERF_CLUSTER)")
    p.add_argument("--interval", type=float, default=float(_env("MONITOR_INTERVAL", "300")),
                   help="seconds between samples (env HPCPERF_MONITOR_INTERVAL, default 300)")
    p.add_argument("--jobid", help="job running on the node (default: the last --begin)")
    p.add_argument("--begin", metavar="J", help="job J starts: one sample with %%begin J")
    p.add_argument("--end", metavar="J", help="job J ended: one sample with %%end J")
    p.add_argument("--state-dir", type=Path,
                   default=Path(_env("MONITOR_STATE", str(default_state_dir()))),
                   help="sequence number and spool (env HPCPERF_MONITOR_STATE)")
    p.add_argument("--collectors", default=_env("MONITOR_COLLECTORS", ",".join(REGISTRY)),
                   help="comma-separated types (env HPCPERF_MONITOR_COLLECTORS)")
    p.add_argument("--spool-mb", type=float, default=float(_env("MONITOR_SPOOL_MB", "100")),
                   help="spool size bound in MB (env HPCPERF_MONITOR_SPOOL_MB)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = p.parse_args(argv)
    if args.begin and args.end:
        p.error("--begin and --end are separate events")
    if args.interval <= 0:
        p.error("--interval must be positive")
    args.collectors = [c for c in args.collectors.split(",") if c]
    unknown = [c for c in args.collectors if c not in REGISTRY]
    if unknown:
        p.error(f"unknown collector(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return args


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hpcperf-monitor: %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # we log one line per problem


def _print(_seq: int, text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def take(sampler: Sampler, state: HostState, framer: Framer, emit: Emit,
         jobid: str, begin: str | None = None, end: str | None = None) -> None:
    """One sample with the next sequence number, framed and emitted."""
    seq = state.next_seq()
    emit(seq, framer.frame(sampler.sample(jobid=jobid, seq=seq, begin=begin, end=end)))


def next_tick(now: float, interval: float) -> float:
    """The next wall-clock multiple of ``interval`` strictly after ``now``."""
    return (now // interval + 1) * interval


def run_daemon(args: argparse.Namespace, sampler: Sampler, state: HostState,
               emit: Emit, publisher: Publisher | None) -> None:
    """Sample now, then at every multiple of the interval, until SIGTERM/SIGINT."""
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    framer = Framer()
    log.info("sampling %s every %gs", ",".join(sampler.types), args.interval)
    while not stopping:
        try:
            take(sampler, state, framer, emit, args.jobid or state.current_job())
        except OSError as exc:  # e.g. a full disk under the spool: try again next tick
            log.error("sample not taken: %s", exc)
        wait = next_tick(time.time(), args.interval) - time.time()
        if publisher is not None:
            publisher.idle(wait, stop=lambda: bool(stopping))
        else:
            deadline = time.monotonic() + wait
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(1.0, deadline - time.monotonic()))
    log.info("stopping on signal %d", stopping[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging(args.verbose)
    sampler = Sampler(args.root, args.collectors)
    try:
        state = HostState(args.state_dir, hostname(args.root))
        spool = Spool(state.spool_dir, int(args.spool_mb * 1024 * 1024))
    except OSError as exc:
        log.error("state directory %s not usable: %s", args.state_dir, exc)
        return 1
    publisher = None if args.stdout else Publisher(args.amqp_url, args.cluster, spool)
    emit: Emit = _print if publisher is None else publisher.send
    try:
        if args.begin:
            state.begin_job(args.begin)
            take(sampler, state, Framer(), emit, args.begin, begin=args.begin)
        elif args.end:
            try:
                take(sampler, state, Framer(), emit, args.end, end=args.end)
            finally:  # the job is over even if its last sample failed
                state.end_job(args.end)
        elif args.once:
            take(sampler, state, Framer(), emit, args.jobid or state.current_job())
        else:
            run_daemon(args, sampler, state, emit, publisher)
    except OSError as exc:
        log.error("sample not taken: %s", exc)
        return 1
    finally:
        if publisher is not None:
            publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
