"""heptool.analysis: what the commands conclude from messages, pure (core and sip only).

* :mod:`~heptool.analysis.extract`: the kind of one message and the ids it carries;
* :mod:`~heptool.analysis.correlate`: the correlation graph joining messages by those ids;
* :mod:`~heptool.analysis.filters`: decode's message selections (``--call-id``, ``--src``...);
* :mod:`~heptool.analysis.scenarios`: realistic, correlated message sets (``--scenario``).

Above :mod:`heptool.core` and :mod:`heptool.sip`, below capture, output and the CLI; no
sockets, files or printing.  Nothing is imported here: each module is loaded when used.
"""
