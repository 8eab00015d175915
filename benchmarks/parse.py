"""Parse speed of the real Stampede3 fixture, against reading the same bytes.

``python -m benchmarks.parse [--repeat N]``. Reports MB/s of each stage
(the reference read_raw + long_frame, the vectorised text -> long frame that
host_data uses, host rows, and the whole host_data path) and, as the baseline measured in the same
run, how fast Python merely splits the same text into lines.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hpcperf_monitor.rawformat import read_raw

from hpcperfstats.hostdata.frames import long_frame
from hpcperfstats.hostdata.rates import host_rows
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
from hpcperfstats.hostdata.types import skipped_types

FIXTURE = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"
           / "stampede3-c571-001.raw")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--copies", type=int, default=20, help="fixture copies per round")
    args = parser.parse_args()
    text = FIXTURE.read_text()
    # several copies, as several hosts' files, so fixed costs do not dominate
    texts = [text.replace("c571-001", f"c571-{i:03d}") for i in range(args.copies)]
    mb = sum(len(t) for t in texts) / 1e6
    raws = [read_raw(t) for t in texts]
    samples = [s for r in raws for s in r.samples]
    frame = long_frame(samples)
    chunks = [Chunk(t) for t in texts]
    skip = skipped_types()
    stages = {
        "baseline: str.splitlines": lambda: [t.splitlines() for t in texts],
        "read_raw (reference)": lambda: [read_raw(t) for t in texts],
        "long_frame (reference)": lambda: long_frame(samples),
        "text -> long (vectorised)": lambda: long_frame_of_chunks(chunks),
        "text -> long, no proc": lambda: long_frame_of_chunks(chunks, skip),
        "host_rows": lambda: host_rows(frame),
        "host_data path (text->rows)": lambda: host_rows(
            long_frame_of_chunks(chunks, skip).frame),
    }
    print(f"{args.copies} copies of {FIXTURE.name}: {mb:.2f} MB, {len(samples)} samples, "
          f"{frame.height} values")
    base = None
    for name, fn in stages.items():
        seconds = best(fn, args.repeat)
        base = base or seconds
        print(f"{name:28s} {seconds * 1e3:8.1f} ms  {mb / seconds:8.1f} MB/s  "
              f"{seconds / base:6.1f}x baseline")


if __name__ == "__main__":
    main()
