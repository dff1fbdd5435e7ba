"""Progress of a conversion through its input file: :class:`FileProgress` (``heptool convert``).

Split from :mod:`heptool.pipeline.convert`: the bar is given by the caller (``progress(name,
size)``, the CLI's rich bar), so nothing here imports rich."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["FileProgress"]


class FileProgress:
    """How far a conversion has read its input file, on a progress bar.

    The readers open the file themselves (no wrapper in their hot loops), so the position
    is that of this process's own descriptor on it, found once through ``/proc/self/fd``
    (Linux; elsewhere :meth:`start` gives None: no bar).  :meth:`tick` per message,
    :meth:`batch` per block of records: cheap, the position is read now and then."""

    def __init__(self, bar: Any, key: tuple[int, int]) -> None:
        self.bar = bar
        self.key = key
        self.fd: int | None = None
        self.n = 0  # work done (a message 1, a block 128); the position is read every 1024
        self.next = 0

    @classmethod
    def start(cls, progress: Callable[[str, int], Any] | None, source: Any,
              name: str) -> FileProgress | None:
        """The progress of reading ``source`` (a path: a str, such as
        :class:`heptool.pipeline.convert.PeekedFile`), or None: no ``progress``, not a
        file, or no way to see the position."""
        import os

        if progress is None or not isinstance(source, str) or \
                not os.path.isdir("/proc/self/fd"):
            return None
        try:
            st = os.stat(source)
        except OSError:
            return None
        bar = progress(name, st.st_size)
        return None if bar is None else cls(bar, (st.st_dev, st.st_ino))

    def tick(self) -> None:
        self.n += 1
        if self.n >= self.next:
            self.next = self.n + 1024
            self.poll()

    def batch(self) -> None:
        self.n += 128
        if self.n >= self.next:
            self.next = self.n + 1024
            self.poll()

    def poll(self) -> None:
        import os

        try:
            if self.fd is None or (os.fstat(self.fd).st_dev, os.fstat(self.fd).st_ino) != self.key:
                self.fd = self._find()
            if self.fd is not None:
                self.bar.update(os.lseek(self.fd, 0, os.SEEK_CUR))
        except OSError:
            self.fd = None

    def _find(self) -> int | None:
        import os

        for name in os.listdir("/proc/self/fd"):
            try:
                st = os.stat(f"/proc/self/fd/{name}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == self.key:
                return int(name)
        return None

    def stop(self) -> None:
        self.bar.stop()
