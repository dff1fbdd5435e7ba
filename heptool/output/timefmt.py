"""Clock times in text views: UTC (marked) by default, the local zone with ``--localtime``.

Every text view (the decode table, the correlate tree and call list, the flow ladder) shows
times through :func:`clock`, and says which zone they are in with :func:`zone_label`, so a
time is never shown without its zone being stated somewhere on the screen. Machine formats
(JSON, JSON Lines) keep ISO 8601 UTC with a ``Z`` (:func:`heptool.core.record.format_time`).

    clock(1764150786_600381)                 -> "09:53:06.600381"
    clock(None)                              -> "-"
    zone_label(False)                        -> "UTC"
    zone_label(True)   (TZ=Europe/Berlin)    -> "UTC+01:00"
"""

from __future__ import annotations

import datetime as _dt
import time as _time

from ..core.record import format_time

__all__ = ["clock", "clock_of_record", "zone_label"]


def _local_offset(us: int) -> _dt.timedelta:
    return _dt.datetime.fromtimestamp(us / 1e6).astimezone().utcoffset() or _dt.timedelta(0)


def clock(us: int | None, *, local: bool = False) -> str:
    """``HH:MM:SS.ffffff`` of a time in microseconds since the epoch (``-`` when unknown)."""
    if us is None:
        return "-"
    if not local:
        text = format_time(us // 1_000_000, us % 1_000_000)
        return "-" if text is None else text[11:-1]
    try:
        t = _dt.datetime.fromtimestamp(us // 1_000_000).replace(microsecond=us % 1_000_000)
    except (OverflowError, OSError, ValueError):
        return "-"
    return t.strftime("%H:%M:%S.%f")


def clock_of_record(time: str | None, *, local: bool = False) -> str:
    """:func:`clock` of a record's ``time`` (``2026-11-26T09:05:06.600381Z``)."""
    if not time:
        return "-"
    if not local:
        return time[11:-1]
    try:
        t = _dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    return t.astimezone().strftime("%H:%M:%S.%f")


def zone_label(local: bool = False, at_us: int | None = None) -> str:
    """The zone the clocks are in: ``UTC``, or the local zone as ``UTC+HH:MM`` (at ``at_us``,
    or now: the offset changes with daylight saving time)."""
    if not local:
        return "UTC"
    when = at_us if at_us is not None else int(_time.time() * 1e6)
    try:
        off = _local_offset(when)
    except (OverflowError, OSError, ValueError):
        off = _local_offset(int(_time.time() * 1e6))
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
