"""hpcperfstats: job-level performance analytics for HPC clusters.

Pure logic (parsing to frames, rates, metrics, SQL) lives here as plain
functions over polars frames; ``hpcperf_dagster`` wraps it in assets.
"""

__version__ = "0.1.0"
