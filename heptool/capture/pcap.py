"""pcap / pcapng reading, frame dissection, IP and TCP reassembly, HEP extraction.

This module is the stable public path (README, ``heptool.capture``): it only re-exports.
The work is done in one module per concern, each usable on its own:

* :mod:`.source`: :func:`open_capture` / :func:`iter_frames` yield :class:`Frame` tuples
  ``(frame_no, ts_sec, ts_usec, linktype, data)`` from classic pcap (either byte order,
  micro- or nanosecond timestamps), pcapng (every interface, every section), and either
  of them gzip-compressed.  The format is told by magic bytes, never by the file name.
  A damaged file yields every complete frame and then raises :class:`CaptureError`
  naming the frame number and byte offset.
* :mod:`.pcapfile` (classic pcap records, :class:`Frame`, :class:`CaptureError`, the
  magics) and :mod:`.pcapng` (pcapng blocks) are the two record readers behind it.
* :mod:`.dissect`: :func:`extract_transport` takes one frame apart down to UDP or TCP and
  returns a :class:`Transport` (or ``None`` for anything else).  Link types: Ethernet
  (with any number of 802.1Q / 802.1ad tags), Linux SLL and SLL2, raw IP, BSD
  NULL/loopback.
* :mod:`.reassembly`: :class:`IPReassembler` puts IPv4 and IPv6 fragments back together;
  :class:`TcpReassembler` turns TCP segments into an in-order byte stream per direction.
* :mod:`.hep`: :func:`iter_hep_payloads` glues it all together and yields one
  :class:`HepPayload` per HEP packet: one per UDP datagram, and as many as the stream
  holds for TCP.  :mod:`.stats` holds the counters it fills in.

Code inside heptool imports from those modules directly; a name patched in a test must be
patched where it is used (e.g. ``heptool.capture.hep._c_udp4_hep``), not here.
"""

from __future__ import annotations

from .dissect import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Transport,
    extract_transport,
)
from .hep import HepPayload, endpoint4, is_hep_candidate, is_hep_stream_start, iter_hep_payloads
from .pcapfile import (
    MAX_BLOCK,
    MAX_CAPLEN,
    CaptureError,
    Frame,
    caplen_error,
    read_exact,
    truncated_record_error,
)
from .reassembly import TCP_FIN, TCP_RST, TCP_SYN, ConnKey, IPReassembler, TcpReassembler
from .source import iter_frames, open_capture
from .stats import CaptureStats, Counters

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "MAX_BLOCK",
    "MAX_CAPLEN",
    "TCP_FIN",
    "TCP_RST",
    "TCP_SYN",
    "CaptureError",
    "CaptureStats",
    "ConnKey",
    "Counters",
    "Frame",
    "HepPayload",
    "IPReassembler",
    "TcpReassembler",
    "Transport",
    "caplen_error",
    "endpoint4",
    "extract_transport",
    "is_hep_candidate",
    "is_hep_stream_start",
    "iter_frames",
    "iter_hep_payloads",
    "open_capture",
    "read_exact",
    "truncated_record_error",
]
