"""Parse speed of the real Stampede3 fixture, against reading the same bytes.

``python -m benchmarks.parse [--copies 20] [--repeat 20] [--threads 1] [--src DIR]``.
Reports MB/s of each stage: the reference reader (read_raw + long_frame +
host_rows), the vectorised text -> wide parts that host_data uses, the rate
step on them, and the whole host_data path (text -> host_data rows, COPY
excluded). Beside them, as the baseline measured in the same run, how fast
Python merely splits the same text into lines, and the upstream figure as a
recorded constant.

Per core: polars runs on ``--threads`` threads (default 1, set before polars
is imported) and MB/s is bytes over the CPU time of the process (best of
``--repeat``), so the figure holds on a machine shared with other work; wall
MB/s is printed beside it.

``--src DIR`` times the host_data path of another tree (``git archive main |
tar -x -C DIR``) against this one, in fresh processes taking turns (before,
after, before, after...), each beside its own ``str.splitlines``: a before
and after measured in the same window of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FIXTURE = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"
           / "stampede3-c571-001.raw")

#: TACC's own parse + rate code (tacc_stats ``pickler``/``job_stats`` readers
#: and its rate computation) run side by side with this project's on this
#: fixture, twenty hosts batched, one core: about 3.0 MB/s (issue 17, measured
#: by the session that filed it; the upstream code is not a dependency here).
UPSTREAM_MB_S = 3.0


def best(fn, repeat: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the fastest of ``repeat`` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def fixture_texts(copies: int) -> list[str]:
    """``copies`` of the fixture as as many hosts' files, so fixed costs do not dominate."""
    text = FIXTURE.read_text()
    return [text.replace("c571-001", f"c571-{i:03d}") for i in range(copies)]


def path_only(copies: int, repeat: int) -> dict:
    """CPU seconds of ``str.splitlines`` and of the host_data path, with the
    ``hpcperfstats`` found first on ``sys.path`` (the tree under test of ``--src``):
    only names the path has had since issue 17."""
    import hpcperfstats
    from hpcperfstats.hostdata.rates import host_rows_of_parts
    from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
    from hpcperfstats.hostdata.types import skipped_types

    texts = fixture_texts(copies)
    chunks, skip = [Chunk(t) for t in texts], skipped_types()
    split, _ = best(lambda: [t.splitlines() for t in texts], repeat)
    path, wall = best(lambda: host_rows_of_parts(long_frame_of_chunks(chunks, skip).parts),
                      repeat)
    return {"tree": str(Path(hpcperfstats.__file__).parents[1]), "splitlines": split,
            "path": path, "wall": wall, "mb": sum(len(t) for t in texts) / 1e6}


def compare(src: Path, args: argparse.Namespace) -> None:
    """The host_data path of ``src`` (before) and of this tree (after), taking turns."""
    here = Path(__file__).resolve().parents[1]
    trees = {"before": src.resolve(), "after": here}
    print(f"host_data path, {args.copies} fixture copies, best of {args.repeat} per process, "
          f"polars threads {args.threads}; before = {trees['before']}, after = {here}")
    print(f"{'round':6s} {'tree':7s} {'load':>5s} {'splitlines MB/s':>16s} {'path CPU ms':>12s} "
          f"{'path MB/s/core':>15s} {'x splitlines':>13s}")
    got: dict[str, list[dict]] = {"before": [], "after": []}
    for round_ in range(1, args.rounds + 1):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'monitor'}",
                   "POLARS_MAX_THREADS": str(args.threads)}
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--path-only",
                 "--copies", str(args.copies), "--repeat", str(args.repeat)],
                env=env, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.splitlines()[-1])
            if Path(r["tree"]) != tree:
                raise SystemExit(f"{name}: imported {r['tree']}, not {tree}")
            got[name].append(r)
            print(f"{round_:<6d} {name:7s} {os.getloadavg()[0]:5.1f} "
                  f"{r['mb'] / r['splitlines']:16.1f} {r['path'] * 1e3:12.1f} "
                  f"{r['mb'] / r['path']:15.1f} {r['path'] / r['splitlines']:12.1f}x")
    b, a = (min(got[n], key=lambda r: r["path"]) for n in ("before", "after"))
    print(f"best: before {b['mb'] / b['path']:.1f} MB/s per core "
          f"({b['path'] / b['splitlines']:.1f}x splitlines), after {a['mb'] / a['path']:.1f} "
          f"MB/s per core ({a['path'] / a['splitlines']:.1f}x splitlines): "
          f"{b['path'] / a['path']:.2f}x faster")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--copies", type=int, default=20, help="fixture copies (hosts) per round")
    parser.add_argument("--threads", type=int, default=1, help="polars threads")
    parser.add_argument("--src", type=Path, help="another tree to time the host_data path of")
    parser.add_argument("--rounds", type=int, default=3, help="turns of each tree (--src)")
    parser.add_argument("--path-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if "polars" in sys.modules:
        raise SystemExit("benchmarks.parse must set the polars thread count before polars loads")
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    if args.path_only:
        print(json.dumps(path_only(args.copies, args.repeat)))
        return
    if args.src:
        compare(args.src, args)
        return

    from hpcperf_monitor.rawformat import read_raw

    from hpcperfstats.hostdata.frames import long_frame
    from hpcperfstats.hostdata.rates import host_rows, host_rows_of_parts
    from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
    from hpcperfstats.hostdata.types import skipped_types

    texts = fixture_texts(args.copies)
    mb = sum(len(t) for t in texts) / 1e6
    skip = skipped_types()
    samples = [s for t in texts for s in read_raw(t).samples]
    chunks = [Chunk(t) for t in texts]
    parts = long_frame_of_chunks(chunks, skip).parts
    rows = host_rows_of_parts(parts)
    stages = {
        "baseline: str.splitlines": lambda: [t.splitlines() for t in texts],
        "reference read_raw": lambda: [read_raw(t) for t in texts],
        "reference text->rows": lambda: host_rows(
            long_frame([s for t in texts for s in read_raw(t).samples], skip)),
        "text -> wide parts": lambda: long_frame_of_chunks(chunks, skip),
        "rates on wide parts": lambda: host_rows_of_parts(parts),
        "host_data path (text->rows)": lambda: host_rows_of_parts(
            long_frame_of_chunks(chunks, skip).parts),
    }
    print(f"{args.copies} copies of {FIXTURE.name}: {mb:.2f} MB, {len(samples)} samples, "
          f"{rows.height} host_data rows; polars threads {args.threads}, best of {args.repeat}")
    print(f"{'stage':28s} {'CPU ms':>8s} {'MB/s/core':>10s} {'wall MB/s':>10s} "
          f"{'x splitlines':>13s}")
    base = None
    for name, fn in stages.items():
        cpu, wall = best(fn, args.repeat)
        base = base or cpu
        print(f"{name:28s} {cpu * 1e3:8.1f} {mb / cpu:10.1f} {mb / wall:10.1f} "
              f"{cpu / base:12.1f}x")
    cpu, _ = best(stages["host_data path (text->rows)"], args.repeat)
    print(f"upstream (TACC parse+rates, recorded): {UPSTREAM_MB_S:.1f} MB/s; host_data path "
          f"{mb / cpu:.1f} MB/s per core = {mb / cpu / UPSTREAM_MB_S:.1f}x upstream "
          f"(goal >= 50 MB/s)")


if __name__ == "__main__":
    main()
