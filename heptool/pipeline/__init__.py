"""heptool's pipeline: what the commands do, as a library (no click, no rich).

* :mod:`heptool.pipeline.reader`: :class:`MessageReader`, inputs -> messages or decode's
  records, problems through a callback (decode, correlate, flow).
* :mod:`heptool.pipeline.correlate`: the correlation run of correlate and flow.
* :mod:`heptool.pipeline.build`: messages built from fields (encode, send).

Importing it is cheap: capture, codec and output modules load when a run starts.
"""

from __future__ import annotations

from heptool.pipeline.reader import Item, MessageReader, Problem, ReadError

__all__ = ["Item", "MessageReader", "Problem", "ReadError"]
