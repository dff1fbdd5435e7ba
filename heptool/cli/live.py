"""Live capture for the commands (``convert -i``, ``send -i``): the click side of
:mod:`heptool.pipeline.agent`.

:class:`LiveSession` opens the capture and turns what is wrong into the documented statuses
(a missing interface or a filter libpcap refuses: usage, 2; no CAP_NET_RAW: 1, naming the
capability), stops it on SIGINT/SIGTERM (the normal end of a live capture, as of ``listen``:
status 0), and at the end prints the kernel's counts (status 1 when packets were lost);
:func:`run_agent` is ``heptool send -i``.
Imported by the commands when they run, never at start-up.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import click

from heptool.cli.env import Environment
from heptool.cli.signals import stopping_on_signals

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LiveSession", "run_agent"]


def _say(env: Environment, *lines: str) -> None:
    for line in lines:
        env.stderr.write(line + "\n")
        env.stderr.flush()


class LiveSession:
    """A live capture's life in a command (nothing at all until :meth:`open`)::

        session = LiveSession(env, "convert")
        frames = session.open(iface, bpf, buffer_size).frames()
        with session:           # SIGINT/SIGTERM stop the capture (from open on); closed at the end
            ...
        session.finish()        # the summary; exit 1 when packets were lost
    """

    def __init__(self, env: Environment, command: str) -> None:
        self.env = env
        self.command = command
        self.cap: Any = None
        self.interrupted: list[int] = []
        self.on_stop: list[Any] = []  # more to stop on a signal (send's Replay)
        self._signals: Any = contextlib.nullcontext()

    def open(self, iface: str, bpf: str | None, buffer_size: int | None) -> Any:
        """The :class:`~heptool.capture.live.LiveCapture` of ``-i IFACE --filter EXPR``."""
        from heptool.capture.live import CapturePermissionError
        from heptool.pipeline.agent import buffer_warning, open_capture

        try:
            cap = open_capture(iface, bpf, buffer_size=buffer_size,
                               on_drops=lambda line: _say(self.env, line))
        except ValueError as e:  # no such interface, a filter libpcap refuses
            raise click.UsageError(str(e)) from None
        except CapturePermissionError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(f"live capture on {iface}: {e.strerror or e}") from None
        warning = buffer_warning(cap)
        if warning:
            _say(self.env, warning)
        self.cap = cap
        # the handlers before the line that says a signal ends it: a script that waits for
        # it and then signals gets the clean end (restored by __exit__)
        self._signals = stopping_on_signals(self._interrupt)
        self._signals.__enter__()
        # as tcpdump's "listening on": from here on nothing is missed
        _say(self.env, f"{self.command}: capturing on {iface}"
                       + (f" ({bpf})" if bpf else "") + "; Ctrl-C or SIGTERM ends it")
        return cap

    def _interrupt(self, sig: int, _frame: Any) -> None:
        self.interrupted.append(sig)
        for stop in self.on_stop:
            stop()
        self.cap.stop()

    def __enter__(self) -> Self:
        return self  # (the signal handlers are in place since open)

    def __exit__(self, *exc: object) -> None:
        try:
            self._signals.__exit__(*exc)
        finally:
            if self.cap is not None:
                self.cap.close()

    def finish(self) -> None:
        """Print the capture's counts (stderr); a ``ClickException`` (status 1) when the
        kernel lost packets."""
        if self.cap is None:
            return
        from heptool.pipeline.agent import capture_report

        self.cap.close()
        lines, lost = capture_report(self.cap)
        _say(self.env, *lines)
        if lost:
            raise click.ClickException(f"packets were lost in live capture on "
                                       f"{self.cap.iface} (see above)")


def _check_agent(o: dict[str, Any]) -> None:
    """What ``send -i`` cannot be combined with (usage errors)."""
    from heptool.cli.options import flag_name, given

    if o["iface"] is None:
        what = next(n for n in ("bpf", "buffer_size", "duration") if o[n])
        raise click.UsageError(f"{'--filter' if what == 'bpf' else flag_name(what)} "
                               "needs -i IFACE")
    if o["inputs"]:
        raise click.UsageError("give either INPUT or -i IFACE, not both")
    built = [flag_name(n) for n in ("scenario", "payload", "proto", "src", "dst", "ip_proto",
                                    "correlation_id", "compress", "time") if given(o, n)]
    if built:
        raise click.UsageError(f"-i sends what it captures: {built[0]} builds packets and "
                               "cannot be used with it")
    for name in ("pace", "speed", "rate"):
        if given(o, name):
            raise click.UsageError(f"-i sends packets as they are captured: {flag_name(name)} "
                                   "cannot be used with it")
    if o["loops"] != 1:
        raise click.UsageError("-i sends packets as they are captured: --loop cannot be used "
                               "with it")


def run_agent(env: Environment, o: dict[str, Any], senders: Any, pacer: Any, match: Any,
              show: Any) -> None:
    """``heptool send -i IFACE``: the SIP seen on IFACE (``--filter``), as HEP to the
    senders (with send's rewrites: --capture-id, --node-name, --auth-key, --chunk,
    --hep-version), until SIGINT/SIGTERM, ``--count`` or ``--duration``; then the send
    summary (``show(*lines)`` prints it) and the capture's.  Exit status 1 when packets were
    lost or not delivered, else 0 (a signal is the normal end of an agent, as of ``listen``)."""
    from heptool.capture.stats import ConvertStats
    from heptool.pipeline.agent import agent_messages
    from heptool.pipeline.build import Rewrites
    from heptool.pipeline.replay import DeliveryError, Replay

    session = LiveSession(env, "send")
    try:
        _check_agent(o)
        cap = session.open(o["iface"], o["bpf"], o["buffer_size"])
    except BaseException:
        for s in senders:
            s.close(0)
        raise
    rewrites = Rewrites(capture_id=o["capture_id"], node_name=o["node_name"],
                        auth_key=o["auth_key"], chunks=o["chunks"], restamp=o["restamp"])
    version = int(o["hep_version"]) if o["hep_version"] else None
    st = ConvertStats()
    replay = Replay(agent_messages(cap, stats=st, timeout=o["duration"], senders=senders),
                    senders,
                    pacer=pacer, count=o["count"], rewrites=rewrites, version=version,
                    match=match)
    session.on_stop.append(replay.stop)
    failed = None
    with session:
        try:
            summary = replay.run()
        except DeliveryError as e:
            failed = e
            summary = e.summary
    show(*summary.lines())
    _say(env, f"send: {st.udp_sip + st.tcp_sip} SIP messages captured ({st.udp_sip} over "
              f"UDP, {st.tcp_sip} over TCP) in {st.frames} packets")
    if failed is not None:
        with contextlib.suppress(click.ClickException):
            session.finish()  # the capture's counts too; the delivery failure is the error
        raise failed
    session.finish()
