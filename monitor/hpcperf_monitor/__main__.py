"""``python -m hpcperf_monitor``: the same as the ``hpcperf-monitor`` command."""

import sys

from hpcperf_monitor.cli import main

sys.exit(main())
