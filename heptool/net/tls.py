"""TLS contexts for HEP over ``tls://``: the server's (:mod:`heptool.net.server` listeners)
and the client's (:mod:`heptool.net.client` senders). Both require TLS 1.2 or newer,
explicitly, rather than leaving it to the Python/OpenSSL defaults or the system policy.
"""

from __future__ import annotations

import ssl

__all__ = ["client_tls_context", "server_tls_context"]


def server_tls_context(cert: str, key: str | None = None,
                       client_ca: str | None = None) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca``, clients must present a certificate it signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def client_tls_context(*, ca: str | None = None, insecure: bool = False, cert: str | None = None,
                       key: str | None = None) -> ssl.SSLContext:
    """A TLS client context: TLS 1.2 or newer; verifies the server (system CAs, or ``ca``)
    unless ``insecure``."""
    ctx = ssl.create_default_context(cafile=ca)
    # explicit, like the server: not left to the Python/OpenSSL defaults or system policy
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx

