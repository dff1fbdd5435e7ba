"""heptool.net: HEP over the network (adapters around the pure core).

* :mod:`heptool.net.target`: ``udp://``, ``tcp://``, ``tls://`` endpoints;
* :mod:`heptool.net.client`: UDP/TCP/TLS senders (reconnect, delivery count) and pacing,
  from :mod:`heptool.net.senders` (stats, status, UDP) and :mod:`heptool.net.stream`
  (TCP/TLS: background connection, write deadlines);
* :mod:`heptool.net.server`: the UDP/TCP/TLS receive loop feeding the core's stream decoder;
* :mod:`heptool.net.stats`: the server's counters, drop reasons and kernel receive-buffer drops;
* :mod:`heptool.net.tls`: the TLS server and client contexts (TLS 1.2 or newer).

Imports the standard library and :mod:`heptool.core` only (never capture, output or cli).
"""
