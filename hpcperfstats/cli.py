"""``hpcperf``: the project's command line, one subcommand per module.

Each subcommand lives in the module that does the work and exposes
``main(argv)``. Subcommands are entry points of the group
``hpcperfstats.commands``, declared by the distribution that ships them: the
pipeline's own (``db``, ``job``, ``import-archive``), the dashboards' (``web``,
``user``) and the demo's (``demo``, ``generate-demo``, only where the
``hpcperfstats-demo`` distribution is installed). So this file names no
package: a production install without the demo simply has no ``demo``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from importlib.metadata import EntryPoint, entry_points

GROUP = "hpcperfstats.commands"


def commands() -> dict[str, EntryPoint]:
    """The installed subcommands by name, sorted."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def summary(ep: EntryPoint) -> str:
    """First line of the command module's docstring, read without importing it.

    Importing every command to print the usage would load Panel and Dagster
    (seconds); the docstring is in the source.
    """
    spec = importlib.util.find_spec(ep.module)
    if spec is None or not spec.origin:
        return ""
    with open(spec.origin, encoding="utf-8") as source:
        doc = ast.get_docstring(ast.parse(source.read())) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return re.sub(r"^``hpcperf [^`]*``:\s*", "", first)


def usage() -> str:
    lines = ["usage: hpcperf <command> [options]", "", "commands:"]
    lines += [f"  {name:<16} {summary(ep)}" for name, ep in commands().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, *rest = argv
    found = commands()
    if name not in found:
        hint = ""
        if name in ("demo", "generate-demo"):
            hint = "\n(the demo ships separately: pip install -e ./demo)"
        print(f"hpcperf: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    return int(found[name].load()(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
