"""Turns samples into message bodies: the header goes before the first one.

The pipeline appends a message without ``$`` lines to the host's current
archive file, so the first message a process sends, and the first after
every header change, must carry the header. Each ``hpcperf-monitor``
process (the daemon, or one ``--once``/``--begin``/``--end`` run) therefore
starts with a header; the pipeline opens a new archive file for it.
"""

from __future__ import annotations

from hpcperf_monitor.rawformat import Header, Sample, write_header, write_sample


class Framer:
    def __init__(self) -> None:
        self._last: Header | None = None

    def frame(self, sample: Sample) -> str:
        """The raw text of one message: ``[header + blank line] + sample``."""
        text = write_sample(sample)
        if sample.header is not self._last:
            self._last = sample.header
            text = write_header(sample.header) + "\n" + text
        return text
