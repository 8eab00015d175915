"""``hpcperf``: the project's command line, one subcommand per module.

Each subcommand lives in the module that does the work and exposes
``main(argv)``; this file only dispatches, so it stays the one list of what
the command can do.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("hpcperfstats.db.cli", "start, stop or show the database; apply the schema"),
    "demo": ("hpcperfstats.demo.run", "run the demo cluster end to end and serve the UIs"),
    "web": ("dashboards.serve", "serve the Panel dashboards"),
    "user": ("dashboards.users", "add, remove or list basic-mode dashboard accounts"),
    "generate-demo": ("hpcperfstats.demo.cli", "write raw stats and accounting of a demo cluster"),
    "job": ("hpcperfstats.report", "one job's report: metrics vs allocation, flags, advice"),
    "import-archive": ("hpcperfstats.importer", "copy an existing <host>/<epoch> archive in, "
                       "indexed; report its hours to Dagster (host_data follows)"),
    "backfill": ("hpcperf_dagster.backfill", "rebuild assets over a range of hours or days "
                 "(a Dagster backfill; progress in the UI or with --wait)"),
}


def usage() -> str:
    lines = ["usage: hpcperf <command> [options]", "", "commands:"]
    lines += [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, *rest = argv
    if name not in COMMANDS:
        print(f"hpcperf: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
