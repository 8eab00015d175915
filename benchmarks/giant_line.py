"""Peak memory of both raw-stats readers on one giant line (issue 12).

``python -m benchmarks.giant_line [--mb 50]``. Each case runs in its own
process: it builds the text, resets the process's peak RSS
(``/proc/self/clear_refs``, Linux), reads the text with the vectorised path
of ``host_data`` (``fast``) or with ``read_raw`` (``ref``), and reports the
peak RSS above what it held before, as a multiple of the input. A line over
``rawformat.MAX_LINE`` is reported unread, so the cost is one copy of it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

SHAPES = {
    "values": 'head + "cpu 0 " + "1 " * (n // 2) + "\\n"',
    "word": 'head + "cpu 0 " + "x" * n + "\\n"',
    "record": '"$hostname c1\\n!cpu user,E idle,E\\n1000 - " + "c" * n + "\\n"',
    "no newline": 'head + "cpu 0 1 2\\n" + "1 " * (n // 2)',
}

CASE = """
import time
from hpcperf_monitor.rawformat import read_raw
from hpcperfstats.hostdata.textframe import Chunk, long_frame_of_chunks
n = {n}
head = "$hostname c1\\n!cpu user,E idle,E\\n1000 - c1\\n"
text = {shape}
def kb(key):
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith(key))
open("/proc/self/clear_refs", "w").write("5")
before = kb("VmRSS:")
t0 = time.perf_counter()
if "{reader}" == "fast":
    issues = long_frame_of_chunks([Chunk(text)]).issues
else:
    issues = read_raw(text).issues
seconds = time.perf_counter() - t0
print(len(text), before, kb("VmHWM:"), seconds, len(issues))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=50, help="size of the giant line")
    args = parser.parse_args()
    n = args.mb * 1_000_000
    print(f"{'shape':12s} {'reader':6s} {'input':>8s} {'peak above':>11s} {'x input':>8s} "
          f"{'seconds':>8s} issues")
    for name, shape in SHAPES.items():
        for reader in ("fast", "ref"):
            code = CASE.format(n=n, shape=shape, reader=reader)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()
            size, before, peak, seconds, issues = int(out[0]), int(out[1]), int(out[2]), \
                float(out[3]), out[4]
            above = (peak - before) * 1000
            print(f"{name:12s} {reader:6s} {size / 1e6:6.0f} MB {above / 1e6:8.0f} MB "
                  f"{above / size:7.1f}x {seconds:8.2f} {issues}")


if __name__ == "__main__":
    main()
