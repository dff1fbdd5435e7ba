"""The names of a :class:`~heptool.core.message.HepMessage`'s values (no code, only constants).

:data:`FIELDS` are the attributes, in record order; :data:`EXTRA_FIELDS` the rarer generic
chunks kept in ``HepMessage.extra``; :data:`NOVALUE` marks a raw layout entry that stands for
no field's value; :data:`BLANK_SLOTS` are the slots a fresh message sets to None.  Shared by
the message, the codec (:mod:`.decode`, :mod:`.encode`, :mod:`.layout`, :mod:`.templates`)
and the record, none of which needs the others for them.
"""

from __future__ import annotations

from typing import Any

from .registry import CHUNKS

__all__ = ["BLANK_SLOTS", "EXTRA_FIELDS", "FIELDS", "FIELD_SET", "NOVALUE"]

#: Attributes that hold HEP values, in record order.
FIELDS = (
    "version",
    "family",
    "ip_proto",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "ts_sec",
    "ts_usec",
    "proto_type",
    "capture_id",
    "auth_key",
    "node_name",
    "correlation_id",
    "extra_correlation",
    "payload",
    "compression",
)
FIELD_SET = frozenset(FIELDS)
#: Values of the rarer generic chunks live in ``HepMessage.extra`` under these names.
EXTRA_FIELDS = tuple(s.field for s in CHUNKS.values() if s.field not in FIELD_SET)
#: Every value slot of a message but ``version``: what a fresh message sets to None.
BLANK_SLOTS = FIELDS[1:] + ("layout", "wire", "_zcache", "_extra", "_warnings")


class _NoValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOVALUE"


#: Marks a raw layout entry that does not stand for the effective value of a field.
NOVALUE: Any = _NoValue()
