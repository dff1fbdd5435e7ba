"""Adapters between capture files and the HEP codec.

``heptool.capture.pcap`` reads classic pcap and pcapng files (plain or gzip-compressed),
takes Ethernet/SLL/SLL2/raw-IP/loopback frames apart down to UDP and TCP, reassembles IPv4
and IPv6 fragments and TCP streams, and yields the HEP packets found in them as raw bytes
with their outer capture time and addresses.  Decoding those bytes is the core's job
(``heptool.decode``); this package never imports scapy.
"""

from .pcap import (
    CaptureError,
    CaptureStats,
    Frame,
    HepPayload,
    IPReassembler,
    TcpReassembler,
    Transport,
    extract_transport,
    is_hep_candidate,
    iter_frames,
    iter_hep_payloads,
    open_capture,
)

__all__ = [
    "CaptureError",
    "CaptureStats",
    "Frame",
    "HepPayload",
    "IPReassembler",
    "TcpReassembler",
    "Transport",
    "extract_transport",
    "is_hep_candidate",
    "iter_frames",
    "iter_hep_payloads",
    "open_capture",
]
