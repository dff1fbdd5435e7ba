"""Exit statuses of the ``heptool`` command.

``heptool.cli.main`` is the only place that turns outcomes into these numbers. The descriptions
are user documentation: ``scripts/gen_docs.py`` writes them into every man page's EXIT STATUS
section and the README's table repeats them (``tests/test_docs.py`` checks), so keep each to one
plain sentence.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit status; ``status.description`` is its one-line meaning."""

    OK = 0
    ERROR = 1
    USAGE = 2
    BAD_INPUT = 3
    INTERRUPTED = 130
    BROKEN_PIPE = 141

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[ExitStatus, str] = {
    ExitStatus.OK: "Success.",
    ExitStatus.ERROR: ("Operating system, file or network error, or an unexpected internal error."),
    ExitStatus.USAGE: "Bad command line: unknown option, invalid value, missing argument.",
    ExitStatus.BAD_INPUT: ("The input was not valid HEP (or pcap) data, or a capture held no "
                           "HEP at all."),
    ExitStatus.INTERRUPTED: (
        "Interrupted by Ctrl-C (SIGINT); not for listen, whose normal end is Ctrl-C or "
        "SIGTERM (status 0, every output complete, the summary printed)."
    ),
    ExitStatus.BROKEN_PIPE: (
        "Standard output was closed early by its reader (for example, piped into head); "
        "nothing is printed, as with a process killed by SIGPIPE."
    ),
}
