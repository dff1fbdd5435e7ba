"""Live capture: packets read from a network interface (``heptool convert -i``, ``send -i``).

A Linux packet socket (``AF_PACKET``, ``SOCK_DGRAM``: IPv4/IPv6 packets without their link
header, so Ethernet, VLANs, tun devices and ``any`` read alike), stdlib only (no scapy):

* the ``--filter`` expression is compiled by libpcap (:func:`~.bpf.compile_bpf`) and runs
  in the kernel, attached before the socket is bound, so nothing unfiltered is queued;
* a large receive buffer (:data:`DEFAULT_BUFFER`, ``--buffer-size``): a burst waits in the
  kernel while Python works, instead of being dropped (the 64 KiB default kept 279 of
  1,000 back-to-back SIP datagrams).  ``SO_RCVBUFFORCE`` (root, CAP_NET_ADMIN) sets it
  past ``net.core.rmem_max``; without that capability the kernel caps it at rmem_max and
  :attr:`LiveCapture.buffer_capped` says so;
* the kernel's own count of what it dropped (``PACKET_STATISTICS``): :meth:`LiveCapture.stats`.

Packets the host sends are included (a capture agent sees both directions), except on
loopback, where the kernel would show each packet twice (going out and coming in): a
guard in front of the filter keeps only the incoming copy, as tcpdump shows it.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from .bpf import compile_bpf
from .pcapfile import Frame

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_BUFFER", "CapturePermissionError", "InterfaceError", "LiveCapture",
           "LiveStats", "live_frames"]

#: Default kernel receive buffer of a live capture, in bytes (heplify's default: 32 MiB).
DEFAULT_BUFFER = 32 << 20

_ETH_P_ALL = 0x0003
_IP_PROTOS = (0x0800, 0x86DD)  # ETH_P_IP, ETH_P_IPV6
_LINKTYPE_RAW = 101
_ARPHRD_LOOPBACK = 772
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMP = 29  # SCM_TIMESTAMP: a struct timeval per packet
_TIMEVAL = struct.Struct("@ll")
_STATS = struct.Struct("II")
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0x20)
# BPF, in front of the filter's own program: drop the outgoing copy of a loopback packet
# (the kernel's ancillary loads SKF_AD_PKTTYPE and SKF_AD_HATYPE), keep everything else
_GUARD = (struct.pack("HBBI", 0x20, 0, 0, 0xFFFFF000 + 4)  # ld pkttype
          + struct.pack("HBBI", 0x15, 0, 3, socket.PACKET_OUTGOING)  # jeq OUTGOING, else +3
          + struct.pack("HBBI", 0x20, 0, 0, 0xFFFFF000 + 28)  # ld hatype
          + struct.pack("HBBI", 0x15, 0, 1, _ARPHRD_LOOPBACK)  # jeq loopback, else +1
          + struct.pack("HBBI", 0x06, 0, 0, 0))  # ret 0: dropped
_ACCEPT = struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF)  # ret: the whole packet


class InterfaceError(ValueError):
    """The interface does not exist (a usage error: the message names it)."""


class CapturePermissionError(PermissionError):
    """Live capture is not permitted: the message names the capability it needs."""


class LiveStats(NamedTuple):
    """What the kernel counted for a capture socket since it was opened."""

    received: int  # packets the filter accepted (read or dropped)
    dropped: int  # packets the kernel dropped because the receive buffer was full
    truncated: int  # packets read longer than the snap length (cut)


def _arphrd(iface: str) -> int:
    """The ARPHRD type of a Linux interface (sysfs), 1 (Ethernet) when unknown."""
    try:
        with open(f"/sys/class/net/{iface}/type", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1


class LiveCapture:
    """A packet socket on ``iface`` (``any``: every interface) with the kernel filter ``bpf``.

    Opened at once, so that every error comes before any output: :class:`InterfaceError`
    (no such interface), :class:`~.bpf.FilterSyntaxError` (libpcap refuses the filter),
    :class:`CapturePermissionError` (no CAP_NET_RAW), ``OSError`` otherwise.
    :meth:`frames` reads; :meth:`stop` (from a signal handler or another thread) ends it
    within 0.2 s; :meth:`stats` gives the kernel's counts; :meth:`close`.

    ``on_drops(new, total)``: called while :meth:`frames` runs, at most every
    ``drop_check`` seconds, when the kernel dropped ``new`` packets since the last call (a
    capture left running for weeks says so when it happens, not only at the end).
    """

    def __init__(self, iface: str, bpf: str | None = None, *,
                 buffer_size: int = DEFAULT_BUFFER, snaplen: int = 262144,
                 on_drops: Callable[[int, int], object] | None = None,
                 drop_check: float = 5.0) -> None:
        self.iface = iface
        self.on_drops = on_drops
        self.drop_check = drop_check
        self.snaplen = snaplen
        self.requested_buffer = buffer_size
        self._stopped = False
        self._received = self._dropped = self._truncated = 0
        self._reported = 0  # drops given to on_drops so far
        anywhere = iface == "any"
        if not anywhere:
            try:
                socket.if_nametoindex(iface)
            except OSError:
                raise InterfaceError(f"no network interface {iface!r} (see 'ip link')") from None
        program = compile_bpf(bpf) if bpf is not None else _ACCEPT
        if anywhere or _arphrd(iface) == _ARPHRD_LOOPBACK:
            program = _GUARD + program  # 'any' sees lo's packets twice too (only lo's)
        try:
            # protocol 0: nothing is queued until bind() (a named interface)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                 socket.htons(_ETH_P_ALL) if anywhere else 0)
        except PermissionError:
            raise CapturePermissionError(
                f"live capture on {iface} is not permitted: it needs the CAP_NET_RAW "
                "capability (run as root, or grant it: setcap cap_net_raw+ep, or "
                "AmbientCapabilities=CAP_NET_RAW in a systemd unit)") from None
        self.sock = sock
        try:
            self._attach(program)
            self.buffer, self.buffer_capped = self._set_buffer(buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
            if anywhere:
                self._drain()  # what came before the filter was attached
            else:
                try:
                    sock.bind((iface, _ETH_P_ALL))
                except OSError as e:
                    if e.errno in (errno.ENODEV, errno.ENXIO):
                        raise InterfaceError(f"no network interface {iface!r} "
                                             "(see 'ip link')") from None
                    raise
        except BaseException:
            sock.close()
            raise

    def _attach(self, program: bytes) -> None:
        import ctypes

        insns = ctypes.create_string_buffer(program, len(program))
        fprog = struct.pack("@HP", len(program) // 8, ctypes.addressof(insns))
        self.sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)

    def _set_buffer(self, size: int) -> tuple[int, bool]:
        """(the buffer the kernel gave, True when it gave less than asked)."""
        sock = self.sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
        except OSError:  # no CAP_NET_ADMIN: capped at net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        # the kernel reports twice what was set (the other half is its bookkeeping)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        return got, got < size

    def _drain(self) -> None:
        sock = self.sock
        sock.setblocking(False)
        try:
            while True:
                sock.recv(1)
        except OSError:
            pass
        finally:
            sock.setblocking(True)
        self.stats()
        self._received = self._dropped = 0

    def stop(self) -> None:
        """End :meth:`frames` within 0.2 s (safe from a signal handler or another thread)."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stats(self) -> LiveStats:
        """The kernel's counts since the socket was opened (read and summed: the kernel
        resets them at every read)."""
        if self.sock.fileno() >= 0:
            try:
                packets, drops = _STATS.unpack(
                    self.sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size))
            except OSError:
                packets = drops = 0
            self._received += packets  # the kernel counts the dropped ones in too
            self._dropped += drops
        return LiveStats(self._received, self._dropped, self._truncated)

    def frames(self, *, count: int | None = None, timeout: float | None = None,
               on_idle: Callable[[], object] | None = None) -> Iterator[Frame]:
        """:class:`Frame` tuples (raw IP, link type 101) for
        :func:`~heptool.capture.sip_packets.sip_to_hep`, with the kernel's receive time,
        until ``count`` frames, ``timeout`` seconds in total, :meth:`stop`, or the caller
        stops iterating.  ``on_idle()`` is called after every 0.2 s without a packet (an
        agent keeps its connections going while nothing is captured)."""
        import select

        sock = self.sock
        recvmsg = sock.recvmsg
        snaplen = self.snaplen
        unpack_tv = _TIMEVAL.unpack_from
        ancsize = socket.CMSG_SPACE(_TIMEVAL.size)
        deadline = None if timeout is None else time.monotonic() + timeout
        new = tuple.__new__
        n = 0
        next_check = time.monotonic() + self.drop_check
        while (count is None or n < count) and not self._stopped:
            wait = 0.2
            now = time.monotonic()
            if deadline is not None:
                left = deadline - now
                if left <= 0:
                    return
                wait = min(wait, left)
            if self.on_drops is not None and now >= next_check:
                next_check = now + self.drop_check
                dropped = self.stats().dropped
                if dropped > self._reported:
                    self.on_drops(dropped - self._reported, dropped)
                    self._reported = dropped
            r, _w, _x = select.select([sock], [], [], wait)
            if not r:
                if on_idle is not None:
                    on_idle()
                continue
            # what is queued (up to 1,000: then the time and the drops are looked at again,
            # a flood never hides them), then back to select
            for _ in range(1000):
                if count is not None and n >= count:
                    break
                try:
                    data, anc, flags, addr = recvmsg(snaplen, ancsize, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                if addr[1] not in _IP_PROTOS:
                    continue
                if flags & _MSG_TRUNC:
                    self._truncated += 1
                sec = usec = None
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP:
                        sec, usec = unpack_tv(value)
                if sec is None:
                    ts = time.time()
                    sec = int(ts)
                    usec = min(round((ts - sec) * 1e6), 999_999)
                n += 1
                yield new(Frame, (n, sec, usec, _LINKTYPE_RAW, data))
                if self._stopped:
                    return

    def close(self) -> None:
        """Read the last counts, then close the socket."""
        if self.sock.fileno() >= 0:
            self.stats()
            self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def live_frames(iface: str, bpf: str | None = None, *, count: int | None = None,
                timeout: float | None = None, snaplen: int = 262144,
                buffer_size: int = DEFAULT_BUFFER) -> Iterator[Frame]:
    """Frames read live from ``iface`` (:meth:`LiveCapture.frames`), the socket closed at
    the end; use :class:`LiveCapture` itself for its drop counts and :meth:`~LiveCapture.stop`.
    Needs root or CAP_NET_RAW (:class:`CapturePermissionError`)."""
    with LiveCapture(iface, bpf, buffer_size=buffer_size, snaplen=snaplen) as cap:
        yield from cap.frames(count=count, timeout=timeout)
