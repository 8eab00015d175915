"""``hpcperf-monitor``: sample this node and publish (or print) raw stats.

Run as a daemon (systemd), it samples at wall-clock multiples of the
interval so every node's samples line up, rereads its config file and
sends a fresh header on SIGHUP, and takes the job begin/end samples that
Slurm's prolog and epilog ask for (``--begin J`` / ``--end J``, handed to
the daemon through :mod:`control`; taken in-process when no daemon runs).
``--once`` takes one sample and exits. Settings: see :mod:`config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hpcperf_monitor import __version__
from hpcperf_monitor.collectors import REGISTRY, cgroup
from hpcperf_monitor.config import DEFAULT_CONFIG, Settings, resolve
from hpcperf_monitor.control import Control
from hpcperf_monitor.framing import Framer
from hpcperf_monitor.publisher import Publisher
from hpcperf_monitor.rawformat import MARK_GPUS, MARK_JOBS
from hpcperf_monitor.sampler import Sampler, hostname
from hpcperf_monitor.spool import Spool
from hpcperf_monitor.state import HostState

log = logging.getLogger("hpcperf_monitor")

Emit = Callable[[int, str], object]

#: argparse dest -> settings key, for the options that are settings
_SETTING_ARGS = {
    "amqp_url": "amqp_url", "cluster": "cluster", "interval": "interval",
    "state_dir": "state_dir", "spool_mb": "spool_mb", "collectors": "collectors",
}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(prog="hpcperf-monitor", description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("/"),
                   help="read /proc and /sys under this directory (default /)")
    p.add_argument("--config", type=Path, default=None,
                   help=f"config file (env HPCPERF_MONITOR_CONFIG, default {DEFAULT_CONFIG})")
    p.add_argument("--once", action="store_true", help="take one sample, then exit")
    p.add_argument("--stdout", action="store_true",
                   help="print messages instead of publishing them")
    p.add_argument("--amqp-url", help="broker URL (env HPCPERF_AMQP_URL)")
    p.add_argument("--cluster", help="cluster name = queue name (env HPCPERF_CLUSTER)")
    p.add_argument("--interval", help="seconds between samples (default 300)")
    p.add_argument("--jobid", help="job running on the node (default: the last --begin)")
    p.add_argument("--begin", metavar="J", help="job J starts: one sample with %%begin J")
    p.add_argument("--end", metavar="J", help="job J ended: one sample with %%end J")
    p.add_argument("--cgroup-id", metavar="N",
                   help="with --begin: the id Slurm's job cgroup is named by, if not J")
    p.add_argument("--gpus", metavar="LIST", help="with --begin: the job's GPUs (SLURM_JOB_GPUS)")
    p.add_argument("--state-dir",
                   help="sequence number, jobs and spool (env HPCPERF_MONITOR_STATE)")
    p.add_argument("--collectors", help="comma-separated types (default: all)")
    p.add_argument("--spool-mb", help="spool size bound in MB (default 100)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = p.parse_args(argv)
    if args.begin and args.end:
        p.error("--begin and --end are separate events")
    args.config = config_path(args.config)
    args.overrides = {
        key: getattr(args, dest) for dest, key in _SETTING_ARGS.items()
        if getattr(args, dest) is not None
    }
    try:
        settings = resolve(args.overrides, args.config, tuple(REGISTRY))
    except ValueError as exc:
        p.error(str(exc) + f"; known: {', '.join(REGISTRY)}")
    return args, settings


def config_path(given: Path | None) -> Path:
    return given or Path(os.environ.get("HPCPERF_MONITOR_CONFIG") or DEFAULT_CONFIG)


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


def job_marks(state: HostState) -> list[str]:
    """``%jobs`` naming every running job when several share the node, then
    ``%gpus <jobid> <list>`` for each running job that Slurm gave GPUs.

    The record line has room for one job id (the newest); the ``%jobs`` mark
    keeps the others visible in the raw stream and the archive.
    """
    running = state.running_jobs()
    marks = [f"{MARK_JOBS} {' '.join(running)}"] if len(running) > 1 else []
    return marks + [f"{MARK_GPUS} {job} {gpus}" for job, gpus in state.job_gpus().items()]


def take(sampler: Sampler, state: HostState, framer: Framer, emit: Emit,
         jobid: str, begin: str | None = None, end: str | None = None) -> None:
    """One sample with the next sequence number, framed and emitted."""
    seq = state.next_seq()
    sample = sampler.sample(jobid=jobid, seq=seq, begin=begin, end=end,
                            extra_marks=job_marks(state))
    emit(seq, framer.frame(sample))


def next_tick(now: float, interval: float) -> float:
    """The next wall-clock multiple of ``interval`` strictly after ``now``."""
    return (now // interval + 1) * interval


class Node:
    """What one set of settings makes: sampler, state, spool and publisher."""

    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.settings = settings
        host = hostname(args.root)
        self.state = HostState(settings.state_dir, host)
        self.sampler = Sampler(args.root, list(settings.collectors) or None,
                               rotate_s=settings.header_hours * 3600, state_dir=self.state.dir)
        spool = Spool(self.state.spool_dir, int(settings.spool_mb * 1024 * 1024))
        self.publisher = None if args.stdout else Publisher(
            settings.amqp_url, settings.cluster, spool)
        self.emit: Emit = _print if self.publisher is None else self.publisher.send

    def close(self) -> None:
        """Release the broker connection and what collectors hold open (perf events)."""
        self.sampler.close()
        if self.publisher is not None:
            self.publisher.close()


class Daemon:
    """The sampling loop and its signals (TERM/INT stop, HUP reload, USR1 wake)."""

    def __init__(self, args: argparse.Namespace, node: Node) -> None:
        self.args, self.node = args, node
        self.framer = Framer()
        self.stopping: list[int] = []
        self.reload_asked = False
        self.woken = False

    def _signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.reload_asked = True
        elif signum == signal.SIGUSR1:
            self.woken = True
        else:
            self.stopping.append(signum)

    def _interrupted(self) -> bool:
        return bool(self.stopping) or self.reload_asked or self.woken

    def reload(self) -> None:
        """Reread the config file; rebuild what changed; send a fresh header."""
        self.reload_asked = False
        old = self.node.settings
        new = resolve(self.args.overrides, self.args.config, tuple(REGISTRY), base=old)
        if new.state_dir != old.state_dir:
            log.error("state_dir cannot change while running; restart the service")
            new = dataclasses.replace(new, state_dir=old.state_dir)
        if new != old:
            self.node.close()
            self.node = Node(self.args, new)
        else:
            self.node.sampler.rotate()
        log.info("reloaded %s: %s every %gs to %s", self.args.config,
                 ",".join(self.node.sampler.types), new.interval, new.cluster)

    def _take(self, jobid: str, begin: str | None = None, end: str | None = None) -> None:
        node = self.node
        try:
            take(node.sampler, node.state, self.framer, node.emit, jobid, begin, end)
        except OSError as exc:  # e.g. a full disk under the spool: try again next tick
            log.error("sample not taken: %s", exc)
        for hint in cgroup.new_hints():  # which Slurm settings give job cgroups, once
            log.info("%s", hint)

    def _requests(self, control: Control) -> None:
        self.woken = False
        for path, kind, jobid in control.pending():
            if kind == "begin":
                self._take(jobid, begin=jobid)
            else:
                self._take(jobid, end=jobid)
                self.node.state.end_job(jobid)
            path.unlink(missing_ok=True)

    def run(self) -> int:
        control = Control(self.node.state.dir)
        if not control.hold():
            log.error("another daemon runs for %s; exiting", self.node.state.dir)
            return 1
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self._signal)
        log.info("sampling %s every %gs", ",".join(self.node.sampler.types),
                 self.node.settings.interval)
        due = time.time()
        try:
            while not self.stopping:
                if self.reload_asked:
                    try:
                        self.reload()
                    except (OSError, ValueError) as exc:
                        log.error("reload failed, old settings kept: %s", exc)
                self._requests(control)
                if time.time() >= due:
                    self._take(self.args.jobid or self.node.state.current_job())
                    due = next_tick(time.time(), self.node.settings.interval)
                wait = due - time.time()
                if self.node.publisher is not None:
                    self.node.publisher.idle(wait, stop=self._interrupted)
                else:
                    deadline = time.monotonic() + wait
                    while not self._interrupted() and time.monotonic() < deadline:
                        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        finally:
            control.release()
        log.info("stopping on signal %d", self.stopping[0])
        return 0


def one_shot(args: argparse.Namespace, node: Node) -> None:
    """``--begin``/``--end``/``--once``: hand over to the daemon, or sample here."""
    state, control = node.state, Control(node.state.dir)
    if args.begin:
        state.begin_job(args.begin, cgroup_id=args.cgroup_id, gpus=args.gpus)
        if not control.request("begin", args.begin):
            take(node.sampler, state, Framer(), node.emit, args.begin, begin=args.begin)
    elif args.end:
        if control.request("end", args.end):
            return  # the daemon forgets the job after its end sample
        try:
            take(node.sampler, state, Framer(), node.emit, args.end, end=args.end)
        finally:  # the job is over even if its last sample failed
            state.end_job(args.end)
    else:
        take(node.sampler, state, Framer(), node.emit, args.jobid or state.current_job())


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    _setup_logging(args.verbose)
    try:
        node = Node(args, settings)
    except OSError as exc:
        log.error("state directory %s not usable: %s", settings.state_dir, exc)
        return 1
    try:
        if args.begin or args.end or args.once:
            one_shot(args, node)
            return 0
        daemon = Daemon(args, node)
        status = daemon.run()
        node = daemon.node
        return status
    except OSError as exc:
        log.error("sample not taken: %s", exc)
        return 1
    finally:
        node.close()


if __name__ == "__main__":
    sys.exit(main())
