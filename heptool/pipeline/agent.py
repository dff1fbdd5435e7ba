"""Live capture as a library: ``heptool convert -i`` and the capture agent ``heptool send -i``.

* :func:`open_capture`: a :class:`heptool.capture.live.LiveCapture` (kernel BPF filter, a
  large receive buffer, the kernel's drop counts), every error raised before any output:
  :class:`~heptool.capture.live.InterfaceError` and
  :class:`~heptool.capture.bpf.FilterSyntaxError` (both ``ValueError``: the command line is
  wrong), :class:`~heptool.capture.live.CapturePermissionError` (CAP_NET_RAW is missing).
* :func:`capture_report`: what the kernel counted, as the lines of a summary, and whether
  packets were lost (a run that lost packets must not end with status 0).
* :func:`agent_messages`: the HEP messages of the SIP the capture sees (UDP datagrams, TCP
  streams reassembled and split, IP fragments joined: the same
  :func:`heptool.capture.sip_packets.sip_to_hep` that converts files), for
  :class:`heptool.pipeline.replay.Replay` to send.  No click::

    from heptool.net.target import parse_target
    from heptool.pipeline.agent import agent_messages, capture_report, open_capture
    from heptool.pipeline.replay import Replay, open_senders

    cap = open_capture("eth0", "port 5060")
    replay = Replay(agent_messages(cap), open_senders([parse_target("tcp://hc:9061")]))
    # replay.stop() and cap.stop() from a signal handler end it
    summary = replay.run()
    lines, lost = capture_report(cap)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["agent_messages", "capture_report", "open_capture"]


def open_capture(iface: str, bpf: str | None = None, *, buffer_size: int | None = None,
                 on_drops: Callable[[str], Any] | None = None) -> Any:
    """A :class:`~heptool.capture.live.LiveCapture` on ``iface`` with the kernel filter
    ``bpf`` and a receive buffer of ``buffer_size`` bytes (default
    :data:`~heptool.capture.live.DEFAULT_BUFFER`); ``on_drops(line)`` is given a
    time-stamped warning line as soon as the kernel drops packets (looked at every 5 s)."""
    from heptool.capture.live import DEFAULT_BUFFER, LiveCapture

    def dropped(new: int, total: int) -> None:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        on_drops(f"{when} Warning: capture {iface}: the kernel dropped {new} packets "  # type: ignore[misc]
                 f"({total} since the start): its receive buffer was full (raise "
                 "--buffer-size, narrow --filter)")

    return LiveCapture(iface, bpf, buffer_size=buffer_size or DEFAULT_BUFFER,
                       on_drops=dropped if on_drops is not None else None)


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << (shift - 4)) == 0:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


def buffer_warning(cap: Any) -> str | None:
    """The warning to give when the kernel set a smaller buffer than asked, else None."""
    if not cap.buffer_capped:
        return None
    return (f"Warning: capture {cap.iface}: the kernel gave a receive buffer of "
            f"{_size(cap.buffer)}, not {_size(cap.requested_buffer)} (net.core.rmem_max caps "
            "it without CAP_NET_ADMIN): raise net.core.rmem_max (sysctl) or bursts may be "
            "dropped")


def capture_report(cap: Any) -> tuple[list[str], bool]:
    """(summary lines, lost): what the kernel counted on ``cap``'s socket, read now.

    ``lost`` is True when the kernel dropped packets (its receive buffer was full) or cut
    some to the snap length; the last line then says so and how to avoid it."""
    st = cap.stats()
    lines = [(f"capture {cap.iface}: {st.received} packets matched the filter, "
              f"{st.dropped} dropped by the kernel (receive buffer {_size(cap.buffer)})")]
    lost = False
    if st.dropped:
        lost = True
        lines.append(f"capture {cap.iface}: {st.dropped} of {st.received} packets were LOST: "
                     "the kernel's receive buffer was full (raise --buffer-size, narrow "
                     "--filter)")
    if st.truncated:
        lost = True
        lines.append(f"capture {cap.iface}: {st.truncated} packets longer than "
                     f"{cap.snaplen} bytes were cut")
    return lines, lost


def agent_messages(cap: Any, *, ports: frozenset[int] | None = None, proto_type: int = 1,
                   capture_id: int | None = 0, node_name: str | None = None,
                   auth_key: str | None = None, correlation_id_from: str = "none",
                   stats: Any = None, timeout: float | None = None,
                   senders: Any = ()) -> Iterator[Any]:
    """HEP messages (HEPv3 fields) for every SIP message ``cap`` sees, as ``heptool convert``
    makes them from a capture, until ``cap.stop()`` or ``timeout`` seconds; ``stats``: a
    :class:`~heptool.capture.stats.ConvertStats` to fill in.  ``senders``: polled while
    nothing is captured, so that a TCP/TLS destination that comes back gets what waits for
    it at once, not with the next packet."""
    from heptool.capture.convert import sip_to_hep

    polls = [p for p in (getattr(s, "poll", None) for s in senders) if p is not None]

    def idle() -> None:
        for poll in polls:
            poll()

    frames = cap.frames(timeout=timeout, on_idle=idle if polls else None)
    return sip_to_hep(frames, ports=ports, proto_type=proto_type,
                      capture_id=capture_id, node_name=node_name, auth_key=auth_key,
                      correlation_id_from=correlation_id_from, stats=stats)
