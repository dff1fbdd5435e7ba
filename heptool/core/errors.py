"""The one error tree of heptool's codec.

Every error raised while decoding carries the byte ``offset`` where the problem
was found and, when a chunk was involved, its ``(vendor, type)``.  ``str(e)`` is a
single line that puts the context first, e.g.::

    chunk 0x0000:0x0011 length 9 exceeds remaining 4 bytes (offset 58)

Callers (the CLI, adapters) may prefix their own context such as a frame number
with :meth:`HepError.with_context`.

Errors of the layers above join the same tree, so that ``heptool.cli.main`` maps every
heptool error in one place (issue 12): :class:`InputError` (an input that cannot be read at all
or any further; ``heptool.capture``'s ``CaptureError`` is one) and :class:`DeliveryError`
(packets that could not be delivered to a target).
"""

from __future__ import annotations

__all__ = [
    "BadChunkValueError",
    "BadMagicError",
    "DecompressionError",
    "DeliveryError",
    "HepDecodeError",
    "HepEncodeError",
    "HepError",
    "HepValueError",
    "InputError",
    "LengthMismatchError",
    "ShortHeaderError",
    "StreamError",
    "TrailingDataError",
    "TruncatedChunkError",
]


class HepError(Exception):
    """HEP error."""

    offset: int | None
    chunk: tuple[int, int] | None
    context: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        offset: int | None = None,
        chunk: tuple[int, int] | None = None,
        context: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "HEP error").strip().splitlines()[0]
        self.offset = offset
        self.chunk = chunk
        self.context = context
        super().__init__(self.message)

    def with_context(self, context: str) -> HepError:
        """Return self with ``context`` (e.g. ``"frame 17"``) put in front of the message."""
        self.context = f"{context}, {self.context}" if self.context else context
        return self

    def __str__(self) -> str:
        text = " ".join(self.message.split())  # always one line
        if self.chunk is not None:
            prefix = f"chunk 0x{self.chunk[0]:04x}:0x{self.chunk[1]:04x}"
            if not text.startswith("chunk 0x"):
                text = f"{prefix}: {text}"
        if self.offset is not None:
            text = f"offset {self.offset}: {text}"
            if self.context:
                text = f"{self.context}, {text}"
        elif self.context:
            text = f"{self.context}: {text}"
        return text

    def __reduce__(self):  # keep keyword state through pickling (multiprocessing)
        return (_rebuild, (type(self), self.message, self.offset, self.chunk, self.context))


def _rebuild(cls, message, offset, chunk, context):  # pragma: no cover - pickling helper
    return cls(message, offset=offset, chunk=chunk, context=context)


class HepDecodeError(HepError):
    """bytes are not a valid HEP packet"""


class ShortHeaderError(HepDecodeError):
    """fewer bytes than the HEP header needs"""


class BadMagicError(HepDecodeError):
    """not a HEP packet (no HEP3 magic, no v1/v2 version byte)"""


class LengthMismatchError(HepDecodeError):
    """HEP length field does not match the bytes present"""


class TruncatedChunkError(HepDecodeError):
    """chunk runs past the end of the packet"""


class BadChunkValueError(HepDecodeError):
    """chunk value has the wrong size or form"""


class TrailingDataError(HepDecodeError):
    """bytes left after the HEP packet"""


class DecompressionError(HepDecodeError):
    """compressed payload chunk cannot be inflated"""


class StreamError(HepDecodeError):
    """HEP stream is not framed correctly"""


class HepEncodeError(HepError):
    """message cannot be encoded as HEP"""


class HepValueError(HepError, ValueError):
    """invalid HEP field value"""


class InputError(HepError):
    """input cannot be read (unknown format, unreadable, damaged beyond a packet)

    The message is preformatted, one line, and names where (``frame 17, byte offset 58: ...``).
    """


class DeliveryError(HepError):
    """packets could not be delivered to a target

    ``summary``: what the run that failed did (``heptool.pipeline.replay.ReplaySummary``), or
    None when it never started (a destination that cannot be reached).
    """

    def __init__(self, message: str | None = None, summary: object = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.summary = summary
