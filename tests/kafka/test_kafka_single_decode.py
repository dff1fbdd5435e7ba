"""listen decodes each packet once when a Kafka forward needs its key and headers: the
handler gives the sender the message it decoded (for the filter, --stats, the metrics...);
the topic gets the same bytes, keys and headers as when the sender decodes itself."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafkahelpers import make_calls, topic_messages

import heptool.core.codec
import heptool.net.kafka
from heptool.core.codec import decode
from heptool.net.kafka import KafkaSender, call_key, hep_headers
from heptool.net.target import parse_target
from heptool.pipeline.handlers import Tally, make_handler


def _counting(monkeypatch) -> collections.Counter:
    calls: collections.Counter[str] = collections.Counter()
    real = heptool.core.codec.decode

    def in_handler(data, *a, **kw):
        calls["handler"] += 1
        return real(data, *a, **kw)

    def in_sender(data, *a, **kw):
        calls["sender"] += 1
        return real(data, *a, **kw)

    # make_handler imports decode from heptool.core.codec when it is built; the sender
    # uses the name heptool.net.kafka imported
    monkeypatch.setattr(heptool.core.codec, "decode", in_handler)
    monkeypatch.setattr(heptool.net.kafka, "decode", in_sender)
    return calls


@pytest.mark.parametrize("need_message", [True, False])
def test_each_packet_is_decoded_once(monkeypatch, topic_url, tmp_path, need_message):
    packets = make_calls(tmp_path / "in.hep", calls=5)
    calls = _counting(monkeypatch)
    sender = KafkaSender(parse_target(topic_url, kafka=True), block=0.0)
    passed = []
    handle = make_handler(Tally(), collections.Counter(), need_message=need_message,
                          match=(lambda m: passed.append(m) or True) if need_message else None,
                          forwards=[sender])
    try:
        for p in packets:
            handle(p, "udp", ("127.0.0.1", 5060), ("127.0.0.1", 9060), 1.0)
    finally:
        sender.close()
    assert sender.stats.packets == len(packets) and sender.stats.undelivered == 0
    if need_message:  # decoded by the handler (the filter saw it), not again by the sender
        assert calls == {"handler": len(packets)} and len(passed) == len(packets)
    else:  # nothing in listen needed the fields: the sender decodes, once
        assert calls == {"sender": len(packets)}
    monkeypatch.undo()
    got = topic_messages(topic_url)
    assert sorted(v for *_, v in got) == sorted(packets)  # the values byte for byte
    for _part, _off, key, headers, value in got:  # the same key and headers as decoded here
        m = decode(value)
        k = call_key(m)
        assert key == (k.encode() if k is not None else None)
        assert headers == hep_headers(m)
