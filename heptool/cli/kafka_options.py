"""The Kafka options of the commands: ``kafka://`` inputs and targets, ``--group``,
``--from-beginning``, ``--until-idle``, ``--kafka-key``.

Kept light at import time (every shell TAB press imports it): click only.  The Kafka
client (the ``heptool[kafka]`` extra) is looked for only when a ``kafka://`` URL is given;
without it the URL is a usage error (exit status 2) naming ``pip install heptool[kafka]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["INPUT_HELP", "KafkaClientMissing", "KafkaInputParam", "check_kafka_key",
           "kafka_input_options", "kafka_key_option", "kafka_key_order", "kafka_options",
           "require_client"]

INPUT_HELP = ("kafka://HOST:PORT/TOPIC reads a Kafka topic (each message one HEP packet): "
              "see --group, --from-beginning, --until-idle.")


class KafkaClientMissing(click.ClickException):
    """A kafka:// URL without the Kafka client: one line, exit status 2 (a usage error: the
    command cannot be run as given on this installation)."""

    exit_code = 2


def require_client(url: str) -> None:
    """:class:`KafkaClientMissing` when the Kafka client is not installed."""
    from heptool.net.kafka import KafkaClientMissingError, client

    try:
        client()
    except KafkaClientMissingError as e:
        raise KafkaClientMissing(f"{url}: {e}") from None


class KafkaInputParam(click.Path):
    """An input path (``-`` for stdin), or ``kafka://HOST:PORT/TOPIC``."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, allow_dash=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        if text[:8].lower() == "kafka://":
            from heptool.net.target import parse_target

            try:
                parse_target(text, kafka=True)
            except ValueError as e:
                self.fail(str(e), param, ctx)
            require_client(text)
            return text
        return super().convert(value, param, ctx)


def kafka_input_options(*, group_option: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--group``/``--kafka-group``, ``--from-beginning``, ``--until-idle`` (for commands
    whose ``--group`` means something else, ``group_option=False`` gives ``--kafka-group``
    only).  Read them with :func:`kafka_options`."""
    names = ("--group", "--kafka-group") if group_option else ("--kafka-group",)

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--until-idle", "until_idle", type=click.FloatRange(min=0, min_open=True),
                         default=None, metavar="SECONDS",
                         help="kafka:// input: stop after SECONDS without a new message (else "
                              "read until Ctrl-C or SIGTERM, which end the reading the same "
                              "way: what was read is written out, then committed).")(f)
        f = click.option("--from-beginning", "from_beginning", is_flag=True,
                         help="kafka:// input: read partitions that have no committed offset "
                              "from their oldest message (else only new messages).")(f)
        f = click.option(*names, "kafka_group", default=None, metavar="NAME",
                         help="kafka:// input: consume as a member of this consumer group (the "
                              "partitions are shared with its other members; offsets are "
                              "committed after the output is written: at least once). Without "
                              "it every partition is read and nothing is committed.")(f)
        return f

    return decorator


def kafka_key_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--kafka-key ORDER`` (kafka:// targets)."""
    return click.option(
        "--kafka-key", "kafka_key", default="auto", show_default=True, metavar="ORDER",
        help="kafka:// targets: the message key (one call, one partition: librdkafka's murmur2 "
             "partitioner, as Java clients) is the first of ORDER the packet has: extra-sip "
             "(OpenSIPS chunk 0x0065 'sip'), correlation-id (chunk 0x0011), call-id (SIP "
             "Call-ID); auto = extra-sip,correlation-id,call-id; none = no key.")(f)


def check_kafka_key(targets: Any, option: str) -> None:
    """A usage error when ``--kafka-key`` was given (on the command line or from its
    environment variable) and none of ``targets``, the ``option`` URLs, is kafka://."""
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("kafka_key") if ctx is not None else None
    if source in (click.core.ParameterSource.COMMANDLINE,
                  click.core.ParameterSource.ENVIRONMENT) and not any(
            getattr(t, "scheme", None) == "kafka" for t in targets):
        raise click.UsageError(f"--kafka-key needs a kafka:// {option}")


def kafka_key_order(text: str) -> tuple[str, ...]:
    """``--kafka-key``'s order, or the usage error."""
    from heptool.net.kafka import parse_key_order

    try:
        return parse_key_order(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--kafka-key'") from None


def kafka_options(opts: dict[str, Any], sources: list[str], *, commit_every: float | None = None,
                  before_commit: Callable[[], Any] | None = None) -> Any:
    """The reader's :class:`~heptool.pipeline.kafka_source.KafkaOptions` (pops the options
    from ``opts``); a usage error when they are given without a kafka:// input."""
    group = opts.pop("kafka_group", None)
    from_beginning = opts.pop("from_beginning", False)
    until_idle = opts.pop("until_idle", None)
    if not any(s[:8].lower() == "kafka://" for s in sources):
        given = [n for n, v in ((_group_name(), group), ("--from-beginning", from_beginning),
                                ("--until-idle", until_idle)) if v]
        if given:
            raise click.UsageError(f"{given[0]} needs a kafka://HOST:PORT/TOPIC input")
        return None
    from heptool.cli.env import Environment
    from heptool.pipeline.kafka_source import KafkaOptions

    ctx = click.get_current_context(silent=True)
    env = ctx.find_object(Environment) if ctx is not None else None
    on_event = None
    if env is not None and env.verbosity and group:  # -v: the group's partitions, on stderr

        def on_event(text: str) -> None:
            env.stderr.write(text + "\n")
            env.stderr.flush()

    stopper = _Stopper()
    if ctx is not None:  # for the rest of the command
        from heptool.cli.signals import stopping_on_signals

        ctx.with_resource(stopping_on_signals(stopper.signal))
    return KafkaOptions(group=group, from_beginning=from_beginning, until_idle=until_idle,
                        commit_every=commit_every if group else None,
                        before_commit=before_commit, on_event=on_event, on_open=stopper)


class _Stopper:
    """Ctrl-C and SIGTERM end the reading of the kafka:// inputs as ``--until-idle`` does:
    the output is completed, what it holds committed, exit status 0 (the normal end of a
    consumer, as of ``listen``).  A second signal gives up at once.  The options' ``on_open``
    (called with each reader opened); a command with handlers of its own calls :meth:`stop`
    from them (send)."""

    def __init__(self) -> None:
        self.readers: list[Any] = []
        self.stopped = False

    def __call__(self, reader: Any) -> None:
        self.readers.append(reader)
        if self.stopped:
            reader.stop()

    def stop(self) -> None:
        self.stopped = True
        for r in self.readers:
            r.stop()

    def signal(self, _sig: int, _frame: Any) -> None:
        if self.stopped:
            raise KeyboardInterrupt
        self.stop()


def _group_name() -> str:
    """The group option's name in this command: ``--group``, or ``--kafka-group`` where
    ``--group`` means something else (correlate)."""
    ctx = click.get_current_context(silent=True)
    for p in ctx.command.params if ctx is not None else ():
        if p.name == "kafka_group" and p.opts:
            return p.opts[0]
    return "--group"
