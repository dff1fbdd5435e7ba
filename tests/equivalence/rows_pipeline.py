"""Rows of the fast paths under the commands (heptool.cli today, heptool.pipeline later):
convert's shape-cached HEPv3 encoder against ``encode``."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from row import Row, outcome
from strategies import hep_messages

# -- the names under test (today's; remap here when they move) -------------------------------
from heptool.cli.cmd_convert import _layout_cached_encoder as shape_cached_encoder
from heptool.core.codec import encode
from heptool.core.message import HepMessage


def shape_cached_fast(ms: list) -> Any:
    """One encoder for a conversion's messages (its cache filled as it goes)."""
    enc = shape_cached_encoder(encode)
    return [outcome(enc, m) for m in ms]


def shape_cached_reference(ms: list) -> Any:
    return [outcome(encode, m) for m in ms]


#: what ``sip_to_hep`` always sets (the shape key leaves these out: a message without one
#: makes the cached function return None instead of bytes; reported, cmd_convert's to fix)
_ALWAYS_SET = {"family": 2, "ip_proto": 17, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
               "src_port": 5060, "dst_port": 5060, "ts_sec": 1, "ts_usec": 2, "proto_type": 1}
#: what it may set
_MAY_SET = ("capture_id", "auth_key", "node_name", "correlation_id", "payload")


def _built(ms: list) -> list:
    """Messages as convert builds them (packet_message): from fields, every value
    :data:`_ALWAYS_SET` names set, some of :data:`_MAY_SET`, nothing else."""
    out = []
    for m in ms:
        fields = {k: v if getattr(m, k) is None else getattr(m, k) for k, v in _ALWAYS_SET.items()}
        fields.update((k, getattr(m, k)) for k in _MAY_SET if getattr(m, k) is not None)
        out.append(HepMessage(**fields))
    return out


def _sip_messages() -> list:
    """The messages ``heptool convert`` encodes for every SIP capture in tests/vectors."""
    from row import CAPTURES

    from heptool.capture.convert import sip_to_hep

    out = []
    for p in CAPTURES:
        if p.suffix == ".pcap":
            try:
                out += list(sip_to_hep(p))
            except Exception:  # noqa: BLE001,S112 - a capture sip_to_hep cannot read
                continue
    return [out[i:i + 50] for i in range(0, len(out), 50)]


ROWS = [
    Row("py.shape_cached_encoder", shape_cached_fast, shape_cached_reference,
        st.lists(hep_messages(), max_size=8).map(_built), examples=_sip_messages),
]
