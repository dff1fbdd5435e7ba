"""heptool.sip: SIP text, pure (standard library and :mod:`heptool.core` only).

What the commands understand of SIP payloads, one concern per module:

* :mod:`~heptool.sip.headers`: the pieces of the reading (ONE token rule, ONE header-line
  regex, the first line, the end of the header block, tags, header values);
* :mod:`~heptool.sip.payload`: the SIP text of a payload (UTF-8, OpenSIPS's JSON wrapping);
* :mod:`~heptool.sip.info`: :func:`~heptool.sip.info.sip_info`, the summary dict, and its
  line-by-line reference (its docstring is THE definition of how heptool reads SIP text);
* :mod:`~heptool.sip.ids`: the ids correlation needs (Call-ID, label, X-CID);
* :mod:`~heptool.sip.summary`: the one-line text a table shows for any message;
* :mod:`~heptool.sip.framing`: SIP over a byte stream, split by Content-Length.

Above :mod:`heptool.core` (it asks :mod:`heptool.core.accel` for the C fast paths), below
analysis, capture and output.  Nothing is imported here, so ``heptool.core`` can reach
:mod:`heptool.sip.framing` without loading the rest.
"""
