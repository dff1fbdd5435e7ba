"""Live capture: frames read from a network interface (``heptool convert -i``).

scapy is imported inside :func:`live_frames` only, never at module level (``import
scapy.all`` costs 0.5-0.9 s, and command loading must stay light: tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from .pcapfile import Frame

__all__ = ["live_frames"]


def _arphrd(iface: str) -> int:
    """The ARPHRD type of a Linux interface (sysfs), 1 (Ethernet) when unknown."""
    try:
        with open(f"/sys/class/net/{iface}/type", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1


def live_frames(iface: str, bpf: str | None = None, *, count: int | None = None,
                timeout: float | None = None, snaplen: int = 262144) -> Iterator[Frame]:
    """Frames read live from ``iface``, as :class:`Frame` tuples for :func:`sip_to_hep`.

    scapy is imported here, never at module level (``import scapy.all`` costs 0.5-0.9 s),
    and only for its packet socket with a compiled BPF filter: frames are taken as raw
    bytes (``recv_raw``) and never dissected by scapy (13 us a packet); the struct-based
    dissection that reads files reads them.  Packets the host sends are included (a capture
    agent sees both directions), except on loopback, where the kernel would show every
    packet twice (going out and coming in) and only the incoming copy is kept, as tcpdump
    does.  Stops after
    ``count`` frames or ``timeout`` seconds in total (both optional; the caller may also
    just stop iterating).  Needs root or CAP_NET_RAW: PermissionError otherwise.
    """
    import logging
    import select
    import time

    import scapy.arch  # noqa: F401 - sets conf.L2listen for this platform
    from scapy.config import conf

    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)  # "Unable to guess type" warnings for lo: we read raw bytes
    arphrd = _arphrd(iface)
    # L2socket drops the outgoing copies (wanted on lo only), L2listen keeps them
    factory = conf.L2socket if arphrd == 772 else conf.L2listen
    try:
        sock = factory(iface=iface, filter=bpf)
    finally:
        log.setLevel(level)
    # tun/none, GRE, sit have no link header: raw IP; everything else reads as Ethernet
    linktype = 101 if arphrd in (65534, 778, 776) else 1
    deadline = None if timeout is None else time.monotonic() + timeout
    n = 0
    new = tuple.__new__
    try:
        while count is None or n < count:
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            r, _w, _x = select.select([sock], [], [], wait)
            if not r:
                continue
            _cls, data, ts = sock.recv_raw(snaplen)
            if data is None:
                continue
            if ts is None:
                ts = time.time()
            sec = int(ts)
            usec = min(round((ts - sec) * 1e6), 999_999)
            n += 1
            yield new(Frame, (n, sec, usec, linktype, bytes(data)))
    finally:
        sock.close()
