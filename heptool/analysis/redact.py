"""TLS key material out of OpenSIPS net events (pure): what views print instead of it.

OpenSIPS's TLS modules add the session's master key to the net event (0x59) of a TLS or WSS
connection (HEP-SPEC 6/14; OpenSIPS modules/tls_openssl/openssl_trace.h): raw bytes, in
both encodings of ``proto_hep``:

* JSON (``homer5_on=0``): a ``"master-key"`` field, ``{"Protocol": "TLS", ...,
  "master-key": "<48 raw bytes>", "Event": "ACCEPTED", ...}``;
* homer5 text (``homer5_on=1``): the values joined by ``:`` without their names,
  ``TLS:<client-subject>:<client-issuer>:<server-subject>:<server-issuer>:<key>:ACCEPTED:SUCCESS:<message>``
  (certificate fields are X509 one-line names, ``/CN=...``; the key may itself hold ``:``).

Whoever has that key (and the capture of the TLS traffic) reads the whole SIP session, so a
view never prints it: :func:`redact_secrets` gives the payload with the key replaced by
``[redacted]``.  Other fields named like a key or secret (``key``, ``tls_master_key``,
``secret``, ``private-key``...) in a JSON net payload are redacted the same way.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact_secrets"]

#: What a view shows instead of key material.
REDACTED = "[redacted]"

_JSON_FIELD = re.compile(rb'"((?:[^"\\]|\\.)*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"', re.DOTALL)
_SECRET_NAME = re.compile(r"(?:^|master|session|private|pre)key$|secret|password")
_EVENT = re.compile(rb"[A-Z][A-Z_]*")
_TLS_PROTOCOLS = (b"TLS", b"WSS", b"BINS")


def _secret(name: bytes) -> bool:
    plain = re.sub(r"[^a-z]", "", name.decode("utf-8", "replace").lower())
    return bool(_SECRET_NAME.search(plain))


def _redact_json(payload: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        if not _secret(m.group(1)):
            return m.group(0)
        return b'"' + m.group(1) + b'"' + m.group(2) + b'"' + REDACTED.encode() + b'"'

    return _JSON_FIELD.sub(one, payload)


def _redact_homer5(payload: bytes) -> bytes:
    parts = payload.split(b":")
    if parts[0].upper() not in _TLS_PROTOCOLS:
        return payload
    # the event and its status (SUCCESS/FAILURE) close the names-and-key part
    event = next((i for i in range(1, len(parts) - 1)
                  if _EVENT.fullmatch(parts[i]) and parts[i + 1] in (b"SUCCESS", b"FAILURE")),
                 None)
    if event is None:
        return payload
    first = 1
    while first < event and parts[first][:1] == b"/" and parts[first].isascii() \
            and parts[first].decode("ascii").isprintable():
        first += 1  # certificate subjects and issuers
    if first == event:
        return payload  # no key (a plain TCP event, or a TLS one without it)
    return b":".join([*parts[:first], REDACTED.encode(), *parts[event:]])


def redact_secrets(payload: bytes | None) -> bytes | None:
    """``payload`` of an OpenSIPS net event with its TLS key material replaced by
    ``[redacted]`` (JSON or homer5 text); any other payload is returned as it is."""
    if not payload:
        return payload
    if payload[:1] == b"{":
        return _redact_json(payload)
    return _redact_homer5(payload)
