"""Human units for stored values: the shared presentation module, re-exported.

One module says how every number reads, for ``hpcperf job`` and the pages
alike: :mod:`hpcperfstats.report.presentation`.
"""

from __future__ import annotations

from hpcperfstats.report.presentation import (
    duration,
    human,
    metric_text,
    plot_scale,
    ratio,
)

__all__ = ["duration", "human", "metric_text", "plot_scale", "ratio"]
