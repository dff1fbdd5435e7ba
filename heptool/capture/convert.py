"""Plain SIP captures -> HEP, and HEP -> the packets it was captured from.

This module is the stable public path (README "The library"): it only re-exports.  Two
generator functions, shared by ``heptool convert``, ``heptool send`` (capture-agent
replay of a SIP pcap) and ``heptool listen --write-sip``:

* :func:`sip_to_hep` reads a capture (or live frames) and yields one :class:`HepMessage`
  per SIP message, exactly as a capture agent (heplify, captagent) would have sent it
  (:mod:`.sip_packets`, with :func:`iter_sip_packets`, its reading half that yields plain
  :class:`SipPacket` tuples).
* :func:`hep_to_frames` takes HEP messages and yields the Ethernet frames they stand for
  (UDP datagrams, or TCP flows with a handshake), ready for a pcap/pcapng writer
  (:mod:`.hep_frames`, with :class:`HepFramer` and :func:`hep_comment`, the pcapng comment
  of a message).

Around them: :func:`compile_filter` (:mod:`.bpf`: a pcap-filter subset for files),
:func:`live_frames` (:mod:`.live`: frames from an interface, for ``-i``) and
:class:`ConvertStats` (:mod:`.stats`).  Writers: :mod:`heptool.capture.pcapng_writer`.

Fast paths (``heptool convert`` to classic pcap, the common case; byte for byte the
general path's output, tests/capture/test_convert_fused.py checks it): for a classic
little-endian pcap file, :func:`sip_to_hep3_pcap` (:mod:`.fused_sip`: SIP -> HEPv3
records) and :func:`hep_pcap_to_records` (:mod:`.fused_hep`: HEP -> records) read the
records straight out of the file's blocks and handle the common frame at fixed offsets
with precompiled structs, and :func:`hep3_to_pcap_records` does the HEP -> records step
for any other input; whatever they do not handle themselves goes, in order, through the
general code (:class:`~.sip_packets.SipReader`, :class:`HepFramer`, the codec), which
shares their state.

Decisions (also in the README, "heptool convert"):

* ``correlation_id_from`` defaults to ``"none"``: heplify and captagent set chunk 0x11 on
  non-SIP types only (RTCP, logs), because for SIP the collector takes the Call-ID from
  the payload itself; a converted capture then looks like what those agents send.
  ``"call-id"`` copies the Call-ID into 0x11, for collectors or scripts that join on it.
* Fake ip proto values 22 (TLS; Kamailio, OpenSIPS) and 50 (WS/WSS; OpenSIPS) become
  TCP frames: the HEP copy holds the decrypted SIP, which is what the analyst wants to see;
  the frames then show it as plain SIP over TCP on the original ports.
* HEPv1 has no timestamp: the frame time is the time the HEP packet itself was captured
  (the outer frame), passed in with the message.
* Non-SIP types (logs, RTCP reports, OpenSIPS REST/net/MI/control events) are kept, as
  UDP datagrams on the addresses the HEP gives, whatever its ip proto says, so they never
  disturb a reassembled SIP/TCP stream; with pcapng each frame's comment keeps the HEP
  metadata (version, proto type, capture id, node name, correlation ids).
* Compressed payloads (chunk 0x0010) are written inflated (the codec inflates them), and
  OpenSIPS's JSON-wrapped SIP (``{"payload": "<SIP>"}``) is unwrapped to the SIP bytes.
"""

from __future__ import annotations

from .bpf import FilterSyntaxError, compile_filter
from .fused_hep import (
    hep3_to_pcap_records,
    hep_pcap_to_records,
)
from .fused_sip import sip_to_hep3_pcap
from .hep_frames import TCP_PROTOS, HepFramer, hep_comment, hep_to_frames
from .live import live_frames
from .pcapfile import PCAP_LE_USEC
from .sip_packets import SipPacket, iter_sip_packets, sip_to_hep
from .stats import ConvertStats

__all__ = [
    "PCAP_LE_USEC",
    "TCP_PROTOS",
    "ConvertStats",
    "FilterSyntaxError",
    "HepFramer",
    "SipPacket",
    "compile_filter",
    "hep3_to_pcap_records",
    "hep_comment",
    "hep_pcap_to_records",
    "hep_to_frames",
    "iter_sip_packets",
    "live_frames",
    "sip_to_hep",
    "sip_to_hep3_pcap",
]
