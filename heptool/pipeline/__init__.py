"""heptool's pipeline: what the commands do, as a library (no click, no rich).

* :mod:`heptool.pipeline.reader`: :class:`MessageReader`, inputs -> messages, packets or
  decode's records, problems through a callback (decode, correlate, flow, convert, send,
  encode).
* :mod:`heptool.pipeline.correlate`: the correlation run of correlate and flow.
* :mod:`heptool.pipeline.build`: defaults, overrides and rewrites of messages (encode, send).
* :mod:`heptool.pipeline.replay`: the replay engine of send (:class:`~.replay.Replay`).
* :mod:`heptool.pipeline.convert`: convert's two directions (:class:`~.convert.Conversion`).
* :mod:`heptool.pipeline.collector`: the collector of listen (:class:`~.collector.Collector`),
  with its per-packet handlers (:mod:`~.handlers`) and the ``--write-sip``/frame sinks
  (:mod:`~.sinks`).

Importing it is cheap: capture, codec and output modules load when a run starts.
"""

from __future__ import annotations

from heptool.pipeline.collector import CloseError, Collector, OutputError
from heptool.pipeline.reader import InputReport, Item, MessageReader, Problem, ReadError

__all__ = [
    "CloseError",
    "Collector",
    "InputReport",
    "Item",
    "MessageReader",
    "OutputError",
    "Problem",
    "ReadError",
]
