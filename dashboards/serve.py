"""Start the dashboards: ``python -m dashboards.serve [extra panel serve args]``.

Runs ``panel serve`` on every page in ``pages/`` on loopback, port
``HPCPERF_WEB_PORT`` (default 5006), with ``/`` serving the job list. The
repository root goes on ``PYTHONPATH`` so the pages import ``dashboards``
and ``hpcperfstats`` however the process was started. Runs in the
foreground (``exec``), so whoever started it stops it with a signal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "pages"
REPO = PAGES_DIR.parent.parent
INDEX = "jobs"


def port() -> int:
    return int(os.environ.get("HPCPERF_WEB_PORT") or 5006)


def command(web_port: int | None = None, extra: list[str] | None = None) -> list[str]:
    """The ``panel serve`` command line (without the interpreter)."""
    web_port = web_port or port()
    pages = sorted(str(p) for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))
    return [
        "-m", "panel", "serve", *pages,
        "--address", "127.0.0.1", "--port", str(web_port),
        "--allow-websocket-origin", f"127.0.0.1:{web_port}",
        "--allow-websocket-origin", f"localhost:{web_port}",
        "--index", INDEX,
        *(extra or []),
    ]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = [sys.executable, *command(extra=argv)]
    print(" ".join(args), flush=True)
    os.execve(sys.executable, args, environment())
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
