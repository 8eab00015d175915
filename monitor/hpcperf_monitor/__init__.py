"""hpcperfstats node monitor: collectors, raw stats format and AMQP publisher.

Layout, one job per module: ``collectors/`` (one module per type, read under
a root path), ``sampler`` (header and samples), ``framing`` (header before a
process's first message), ``state`` (sequence number, current job, locks),
``spool`` (messages awaiting a broker confirm), ``publisher`` (confirmed
AMQP publishing through the spool), ``cli`` (the ``hpcperf-monitor``
command), ``record`` (copy a node's source files as a test tree). Standard
library plus ``pika`` only; runs on Python 3.9 and newer.
"""

__version__ = "0.1.0"
