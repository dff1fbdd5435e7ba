"""Counters of what the capture readers skipped or found.

:class:`Counters` is the base (named integer slots, all starting at 0);
:class:`CaptureStats` is what :func:`~.hep.iter_hep_payloads` fills in,
:class:`ConvertStats` what the convert modules fill in.
"""

from __future__ import annotations

__all__ = ["CaptureStats", "ConvertStats", "Counters"]


class Counters:
    """Named integer counters (subclasses list them in ``__slots__``), all starting at 0."""

    __slots__ = ()

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.as_dict().items())})"


class CaptureStats(Counters):
    """Counters filled in by :func:`iter_hep_payloads` (pass one in to read them)."""

    __slots__ = (
        "fragments_dropped",
        "frames",
        "hep_packets",
        "non_hep_tcp_bytes",
        "not_hep_udp",
        "not_ip",
        "not_port",
        "stream_garbage_bytes",
        "stream_garbage_frame",
        "stream_leftover_bytes",
        "stream_skipped_bytes",
        "tcp_dropped_bytes",
        "tcp_gap_bytes",
        "tcp_segments",
    )


class ConvertStats(Counters):
    """Counters filled in by :func:`~.sip_packets.sip_to_hep` and :func:`~.hep_frames.hep_to_frames`."""

    __slots__ = (
        "frames",
        "frames_out",
        "messages",
        "not_ip",
        "not_port",
        "tcp_flows",
        "tcp_incomplete_bytes",
        "tcp_other_bytes",
        "tcp_sip",
        "tcp_skipped_bytes",
        "tcp_streams_other",
        "too_big",
        "udp_other",
        "udp_sip",
        "untimed",
    )
