"""Bounded reading of raw stats text: memory per chunk, not per file or line.

One setting, ``HPCPERF_CHUNK_MAX_BYTES`` (default 16 MiB), bounds the raw
text parsed at once everywhere: a drained message (``HPCPERF_MESSAGE_MAX_BYTES``
defaults to it), an archive slice read for ``host_data``, a piece of an
imported or damaged archive file. Parsing costs a multiple of its input (the
vectorised path about 17x), so the bound on input is the bound on memory.
:func:`iter_lines` never holds more than one chunk and one read block: a line
longer than the limit is reported as :class:`Oversized` (offset, length and
its first bytes) and skipped, never read whole. A ``host_data`` build cuts
its hours into pieces of hosts of at most that much raw text
(:func:`hpcperfstats.hostdata.load.pieces`), so it is bounded the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hpcperfstats.config import chunk_max_bytes  # noqa: F401  (the bound, read here by its users)

#: bytes read from a file per system call
READ_BLOCK = 1 << 20
#: bytes of an oversized line kept for the report
HEAD_BYTES = 512


@dataclass(frozen=True)
class Oversized:
    """A line over the chunk bound, skipped: where it was and how it began."""

    offset: int
    length: int
    head: bytes

    def describe(self, source: str) -> str:
        return (f"{source}@{self.offset}: line of {self.length} bytes over "
                f"HPCPERF_CHUNK_MAX_BYTES, skipped (begins {self.head[:80]!r})")


def iter_lines(fh: BinaryIO, max_line: int, start: int = 0, stop: int | None = None,
               ) -> Iterator[tuple[int, bytes] | Oversized]:
    """``(offset, line)`` of each line of ``fh[start:stop]`` (``\\n`` kept; the
    last may lack it), or :class:`Oversized` for a line over ``max_line`` bytes."""
    fh.seek(start)
    pos, buf = start, b""
    skipping: tuple[int, int, bytes] | None = None  # offset, length so far, head
    while True:
        want = READ_BLOCK if stop is None else min(READ_BLOCK, stop - pos - len(buf))
        block = fh.read(want) if want > 0 else b""
        if skipping is not None:
            cut = block.find(b"\n")
            if cut < 0 and block:
                skipping = (skipping[0], skipping[1] + len(block), skipping[2])
                pos += len(block)
                continue
            end = len(block) if cut < 0 else cut + 1
            yield Oversized(skipping[0], skipping[1] + end, skipping[2])
            pos += end
            buf, block, skipping = b"", block[end:], None
        buf += block
        lines = buf.split(b"\n")
        buf = lines.pop()
        for line in lines:
            if len(line) >= max_line:
                yield Oversized(pos, len(line) + 1, line[:HEAD_BYTES])
            else:
                yield pos, line + b"\n"
            pos += len(line) + 1
        if len(buf) > max_line:
            skipping, buf = (pos, len(buf), buf[:HEAD_BYTES]), b""
            pos += skipping[1]
            continue
        if not block:
            if buf:
                yield pos, buf
            return
