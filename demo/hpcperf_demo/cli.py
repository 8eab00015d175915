"""``hpcperf generate-demo``: write a demo cluster's raw stats and accounting to disk.

The layout is the archive's and the login node's: ``raw/<host>/<epoch>``
files (a new file at every header, named by its first sample's epoch, later
messages appended) and ``accounting/<YYYY-MM-DD>.txt`` dumps, so the output
can be fed to the pipeline as if it came from a real cluster.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hpcperf_demo.cluster import SHAPES, DemoConfig, make_plan
from hpcperf_demo.generate import accounting_files, iter_messages, script_files
from hpcperfstats.jobs.scripts import SUFFIX as SCRIPTS_SUFFIX


def parse_time(text: str) -> datetime:
    """An ISO time (UTC if no offset) or ``now``."""
    if text == "now":
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def demo_config(args: argparse.Namespace, **kw) -> DemoConfig:
    """The config the arguments name: anchored at ``--end`` when given, else at ``--start``."""
    common = {"nodes": args.nodes, "hours": args.hours, "seed": args.seed, **kw}
    if args.end is not None:
        return DemoConfig.ending_at(args.end, args.shape, **common)
    return DemoConfig.of_shape(args.shape, start=args.start, **common)


def parse_args(argv: list[str]) -> argparse.Namespace:
    d = DemoConfig()
    p = argparse.ArgumentParser(prog="hpcperf generate-demo", description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--nodes", type=int, default=d.nodes)
    when = p.add_mutually_exclusive_group()
    when.add_argument("--start", type=parse_time, default=d.start,
                      help="ISO time (UTC if no offset)")
    when.add_argument("--end", type=parse_time, default=None,
                      help="anchor the range's end here instead ('now' or an ISO time): "
                           "same jobs and values, shifted in time")
    p.add_argument("--hours", type=int, default=d.hours)
    p.add_argument("--interval", type=int, default=d.interval, help="seconds between samples")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--shape", choices=SHAPES, default=d.shape,
                   help="demo: small nodes; fixture: nodes shaped like the Stampede3 fixture")
    return p.parse_args(argv)


def write_demo(cfg: DemoConfig, out: Path, progress=print) -> dict[str, int]:
    """Write raw files and accounting dumps of ``cfg`` under ``out``; counts."""
    plan = make_plan(cfg)
    raw = out / "raw"
    current: dict[str, Path] = {}
    counts = {"hosts": 0, "samples": 0, "files": 0, "bytes": 0}
    total = cfg.all_nodes * cfg.samples
    step = max(1, total // 10)
    for msg in iter_messages(cfg, plan):
        if msg.text.startswith("$") or msg.host not in current:
            folder = raw / msg.host
            if msg.host not in current:
                folder.mkdir(parents=True, exist_ok=True)
                counts["hosts"] += 1
            current[msg.host] = folder / str(int(msg.time))
            counts["files"] += 1
        with open(current[msg.host], "a", encoding="utf-8") as fh:
            fh.write(msg.text)
        counts["samples"] += msg.sample_count
        counts["bytes"] += len(msg.text)
        if counts["samples"] % step == 0:
            progress(f"  {counts['samples']}/{total} samples, {counts['hosts']} hosts, "
                     f"up to {datetime.fromtimestamp(msg.time, UTC):%Y-%m-%d %H:%M}")
    acct = out / "accounting"
    acct.mkdir(parents=True, exist_ok=True)
    dumps = accounting_files(cfg, plan)
    for day, text in script_files(cfg, plan).items():  # before the dumps, as the dump does
        (acct / f"{day}{SCRIPTS_SUFFIX}").write_text(text, encoding="utf-8")
    for day, text in dumps.items():
        (acct / f"{day}.txt").write_text(text, encoding="utf-8")
    counts["accounting_days"] = len(dumps)
    counts["jobs"] = len(plan.jobs)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    cfg = demo_config(args, interval=args.interval)
    gpu = f" + {cfg.gpu_nodes} GPU node{'s' if cfg.gpu_nodes > 1 else ''}" if cfg.gpu_nodes else ""
    print(f"generate-demo: {cfg.nodes} nodes{gpu} x {cfg.samples} samples "
          f"({cfg.hours} h at {cfg.interval} s) from {cfg.start.isoformat()} -> {args.out}")
    t0 = time.perf_counter()
    counts = write_demo(cfg, args.out)
    print(f"wrote {counts['samples']} samples of {counts['hosts']} hosts in {counts['files']} "
          f"raw files ({counts['bytes'] / 1e6:.1f} MB), {counts['jobs']} jobs in "
          f"{counts['accounting_days']} accounting files, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
