"""Raw HEP output: the packets' bytes back to back (what ``heptool encode`` writes)."""

from __future__ import annotations

from typing import IO

__all__ = ["RawWriter"]


class RawWriter:
    def __init__(self, stream: IO[bytes], *, line_buffered: bool = False) -> None:
        self.stream = stream
        self.line_buffered = line_buffered
        self.count = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.count += 1
        if self.line_buffered:
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
