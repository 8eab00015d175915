"""How fast ``archive_day`` sends a closed day off site: MB/s to a mounted path
and over rsync/SSH, and the gzip step before them.

``python -m benchmarks.export [--nodes 200]``

One day of a demo cluster (``DemoConfig(nodes)``, 5-minute samples, the next
day's first samples closing it) is drained into an archive; then, timed
separately: compressing the day (``archive_days.compress_day``), exporting
it to a folder on the same disk (the "mounted path" target: what an NFS or
HSM staging mount costs at best) and to a loopback ``sshd`` through rsync
(``offsite.Target`` as production runs it, then read back and checked
against the manifest). The baseline is a plain ``cp -r`` of the same files
in the same run, so the ratios say what the manifest, fsyncs and read-back
cost on top of moving the bytes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hpcperf_demo import sshd
from hpcperf_demo.cluster import DemoConfig
from hpcperf_demo.generate import iter_messages

from hpcperfstats.archive.days import compress_day
from hpcperfstats.archive.offsite import Target, export_day
from hpcperfstats.ingest.drain import store_messages

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    if not sshd.available():
        raise SystemExit("openssh-server and rsync are needed (scripts/setup installs them)")
    cfg = DemoConfig(gpu_nodes=0, nodes=args.nodes, start=DAY, hours=25)  # hour 25 closes the day
    day = int(DAY.timestamp())
    with tempfile.TemporaryDirectory(prefix="hpcperf-export-") as tmp:
        root = Path(tmp)
        archive = root / "archive"
        store_messages((m.text.encode() for m in iter_messages(cfg)), archive,
                       root / "quarantine")
        raw = sum(p.stat().st_size for p in archive.rglob("*") if p.is_file())
        gz_s, (files, _) = timed(lambda: compress_day(archive, day))
        size = sum(p.stat().st_size for p in files)
        mb = size / 1e6
        cp_s, _ = timed(lambda: subprocess.run(["cp", "-r", str(archive), str(root / "cp")],
                                               check=True))
        shutil.rmtree(root / "cp")
        (root / "mount").mkdir()
        path_s, res = timed(lambda: export_day(archive, day, Target(str(root / "mount"))))
        assert res.verified and res.sent
        (root / "far").mkdir()
        with sshd.running(root / "ssh") as (host, ssh):
            rsync_s, res = timed(lambda: export_day(archive, day,
                                                    Target(f"{host}:{root / 'far'}", ssh)))
            assert res.verified and res.sent
            again_s, res = timed(lambda: export_day(archive, day,
                                                    Target(f"{host}:{root / 'far'}", ssh)))
            assert res.sent == 0
    print(f"{args.nodes} nodes x 1 day: {len(files)} host files, {raw / 1e6:.1f} MB raw "
          f"(with the next day's hour), {mb:.1f} MB gzipped")
    print("| step | seconds | MB/s (gzipped day; gzip: raw) | vs cp -r |")
    print("| --- | --- | --- | --- |")
    print(f"| gzip the day (compress_day) | {gz_s:.2f} | {raw / 1e6 / gz_s:.1f} | |")
    print(f"| baseline: cp -r | {cp_s:.2f} | {mb / cp_s:.1f} | 1.0x |")
    for name, secs in (("export to a mounted path (fsync, manifest, verify)", path_s),
                       ("export over rsync/SSH (send, read back, verify)", rsync_s),
                       ("re-run over rsync/SSH (manifest matches: nothing sent)", again_s)):
        print(f"| {name} | {secs:.2f} | {mb / secs:.1f} | {secs / cp_s:.1f}x slower |")


if __name__ == "__main__":
    main()
