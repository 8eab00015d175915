"""The one ``host_data`` read behind every series, for the pipeline and the pages.

Host-wide series read the host's own rows (device ``''``); a job's cgroup
series read the devices named by its ids. The pipeline reads the raw points
(the ``{time}`` column is filled in by ``series.read_rows``); a page reads
them averaged into ``date_bin`` buckets. Named parameters: ``c`` the cluster, ``h`` hosts,
``s``/``e`` the closed time range, ``types``, ``events``, ``devices`` (cgroup)
and ``b``/``o`` the bucket width and origin (bucketed).
"""

from __future__ import annotations


def series_query(*, cgroup: bool, bucketed: bool) -> str:
    """SELECT time, host, type[, device], event, value: one of four variants."""
    keys = "host, type, device, event" if cgroup else "host, type, event"
    time = "extract(epoch FROM date_bin(%(b)s, time, %(o)s))" if bucketed else "{time}"
    value = "avg(value)" if bucketed else "value"
    device = "device = ANY(%(devices)s)" if cgroup else "device = ''"
    query = (f"SELECT {time}, {keys}, {value} FROM host_data"
             " WHERE cluster = %(c)s AND host = ANY(%(h)s) AND time >= %(s)s AND time <= %(e)s"
             f" AND type = ANY(%(types)s) AND {device} AND event = ANY(%(events)s)")
    if bucketed:
        query += " GROUP BY " + ", ".join(str(n) for n in range(1, keys.count(",") + 3))
    return query
