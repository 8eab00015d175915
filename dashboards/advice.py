"""Plain-words advice next to each job flag: the shared presentation module's.

The table and its lookup live in :mod:`hpcperfstats.report.presentation`, used by
``hpcperf job`` too.
"""

from __future__ import annotations

from hpcperfstats.report.presentation import ADVICE, advice

__all__ = ["ADVICE", "advice"]
