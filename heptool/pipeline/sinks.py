"""Per-packet outputs of the collector that are more than a file write.

* :class:`SipSink`: ``listen --write-sip``, the packets the HEP carried, decapsulated into a
  pcap/pcapng by :func:`heptool.capture.convert.hep_to_frames` in a thread;
* :func:`frame_cache`: ``--write-hep``'s UDP frame builder, with IPv4 headers cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from heptool.output.files import RotatingFile

__all__ = ["SipSink", "frame_cache"]

_REOPEN = object()


class SipSink:
    """``--write-sip``: :func:`heptool.capture.convert.hep_to_frames` (which keeps TCP flow
    state across messages, so it wants one iterator of messages) run in a thread fed by a
    queue, into a :class:`heptool.output.files.RotatingFile` (rotated by ``size``/``every``).
    The file is committed whenever the converter waits for the next message, i.e. between
    whole records. :meth:`close` raises OSError when the thread failed."""

    def __init__(self, path: str, *, size: int | None = None, every: float | None = None,
                 overwrite: bool = False,
                 on_warning: Callable[[str], None] | None = None) -> None:
        import queue
        import threading

        from heptool.capture.convert import ConvertStats, hep_to_frames
        from heptool.capture.pcapng_writer import PcapFrameWriter, PcapngWriter

        self.path = path
        pcapng = path.lower().endswith(".pcapng")
        self.out = RotatingFile(path, PcapngWriter if pcapng else PcapFrameWriter, size=size,
                                every=every, overwrite=overwrite)
        self.on_warning = on_warning
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=100_000)
        self.stats = ConvertStats()
        self.error: BaseException | None = None
        self._frames = hep_to_frames(self._source(), comments=pcapng, stats=self.stats)
        self.thread = threading.Thread(target=self._run, name="write-sip", daemon=True)
        self.thread.start()

    @property
    def files(self) -> list[str]:
        return self.out.files

    def _source(self) -> Any:
        import queue

        while True:
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                self.out.tick(time.monotonic())  # commit; rotate when --rotate-time is due
                continue
            if item is None:
                return
            if item is _REOPEN:  # here the converter waits for a message: between records
                warning = self.out.reopen()
                if warning is not None and self.on_warning is not None:
                    self.on_warning(warning)
                continue
            yield item

    def _run(self) -> None:
        out = self.out
        try:
            for ts_sec, ts_usec, frame, comment in self._frames:
                out.writer.write(ts_sec, ts_usec, frame, comment)
                out.after_record()
        except Exception as e:  # noqa: BLE001 - a thread boundary: close() reports it
            self.error = e

    def put(self, m: Any, received: float) -> None:
        sec = int(received)
        self.queue.put((m, (sec, int((received - sec) * 1e6))))

    def reopen(self) -> None:
        """Start the next file (SIGHUP: see :meth:`RotatingFile.reopen`), in the writing
        thread, after the messages already queued."""
        self.queue.put(_REOPEN)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(30)
        self.out.close()
        if self.error is not None:
            raise OSError(f"--write-sip {self.path}: {self.error}")


def frame_cache() -> Callable[[bytes, tuple, tuple], bytes]:
    """``udp_frame`` of heptool.capture.writer, with the IPv4 headers cached per
    (source, destination, length): their UDP checksum is 0, so the header does not depend on
    the payload; ~10x cheaper per packet at listen's rates. IPv6 frames are built each time."""
    from heptool.capture.writer import udp_frame

    cache: dict[tuple, bytes] = {}

    def frame(data: bytes, src: tuple, dst: tuple) -> bytes:
        key = (src, dst, len(data))
        head = cache.get(key)
        if head is not None:
            return head + data
        f = udp_frame(data, src, dst)
        if ":" not in src[0]:
            if len(cache) > 65536:
                cache.clear()
            cache[key] = f[: len(f) - len(data)]
        return f

    return frame
