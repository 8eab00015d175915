"""hpcperfstats node monitor: collectors, raw stats format and AMQP publisher."""

__version__ = "0.1.0"
