"""Plain-text layout for the text views (decode's table, correlate's tree): colour and wrapping.

The views write plain lines, never through rich: rich measures and wraps every cell, which
made a table of 50,000 messages take 20 s, and its cropping cut ports (``127.0.0.1:527``).
Here:

* :func:`paint` wraps a text in one ANSI SGR sequence when colour is on (the caller decides:
  a terminal, ``--color always``, ``FORCE_COLOR``; ``NO_COLOR`` and ``--color never`` off).
  The text itself must already be safe (:func:`heptool.sip.summary.printable`): only the
  sequences made here reach the terminal.
* :func:`wrap` breaks a text into lines at spaces only, never inside a word, so an address,
  a port or an id is never cut; a word longer than the room gets a line of its own, longer
  than the width. ``width`` None means no limit: one line.
"""

from __future__ import annotations

__all__ = ["RESET", "SGR", "paint", "wrap"]

#: Styles by name -> SGR parameters.
SGR = {
    "bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
    "magenta": "35", "cyan": "36", "bold cyan": "1;36",
}
RESET = "\x1b[0m"


def paint(text: str, style: str | None, color: bool) -> str:
    """``text`` in ``style`` (a key of :data:`SGR`) when ``color``; else ``text`` itself."""
    if not color or not style or not text:
        return text
    return f"\x1b[{SGR[style]}m{text}{RESET}"


def wrap(text: str, first: int | None, rest: int | None = None) -> list[str]:
    """``text`` in lines of at most ``first`` characters (the first line) and ``rest`` (the
    others; default ``first``), broken at spaces only. None: no limit (one line)."""
    if first is None or len(text) <= first:
        return [text]
    room = first
    nxt = first if rest is None else rest
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= room:
            line += " " + word
        else:
            lines.append(line)
            room = nxt
            line = word
    lines.append(line)
    return lines
