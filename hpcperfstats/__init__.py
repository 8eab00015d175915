"""hpcperfstats: job-level performance analytics for HPC clusters.

The pipeline's logic, grouped by noun (``archive``, ``ingest``, ``hostdata``,
``jobs``, ``flags``, ``report``, ``db``): pure transforms over polars frames
beside the modules that read and write. ``hpcperf_dagster`` and
``hpcperf_assets`` wrap it in Dagster definitions; ``dashboards`` shows it.
"""

__version__ = "0.1.0"
