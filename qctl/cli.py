"""The typer app: each command parses its options, calls ``qctl.commands`` and nothing else.

Nothing here talks to a broker; that is ``qctl.adapters`` through
``qctl.registry``.  Heavy imports stay inside functions (``qctl --help`` must not
import a broker client, rich or tabulate).
"""

# No ``from __future__ import annotations`` here: typer reads every command's signature at start-up,
# and string annotations cost it ~550 evals (~40 ms of every ``qctl --version``, measured).
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qctl import __version__, collector
from qctl.boundary import COMPLETE_VAR, errors_to_exit_codes, run_app
from qctl.cli_types import AGE_SECONDS, RATE, SECONDS, Count
from qctl.completing import complete_queues
from qctl.examples import epilog

app = typer.Typer(
    name="qctl",
    help="Queue depth, peek, purge, redrive, move and backups for Redis, RabbitMQ, Kafka, SQS and MQTT.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,  # `qctl completion SHELL` prints the scripts (also shipped in completions/)
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Show the profiles in the config file (secrets masked).", no_args_is_help=True)
app.add_typer(config_app, name="config")

URL_HELP = "Broker URL (redis://, amqp://, kafka://, sqs://, mqtt://...); overrides QCTL_URL and the profile's url."
UrlOption = Annotated[Optional[list[str]], typer.Option(
    "-u", "--url", help=URL_HELP, show_default=False, metavar="URL")]
UrlsOption = Annotated[Optional[list[str]], typer.Option(
    "-u", "--url", help=URL_HELP + " Repeat for several brokers.", show_default=False, metavar="URL")]
ProfileOption = Annotated[Optional[list[str]], typer.Option(
    "-p", "--profile", help="Profile from the config file.", metavar="NAME")]
ProfilesOption = Annotated[Optional[list[str]], typer.Option(
    "-p", "--profile", help="Profile from the config file. Repeat for several brokers.", metavar="NAME")]
OutputOption = Annotated[str, typer.Option(
    "-o", "--output", help="table, json, jsonl, csv (stats also prom).", metavar="FORMAT")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", help="Seconds to wait for the broker.", click_type=SECONDS, metavar="SECONDS")]
ManagementOption = Annotated[Optional[str], typer.Option(
    "--management-url", help="RabbitMQ management API, e.g. http://host:15672.", metavar="URL")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks (passwords still masked).")]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars or notes on stderr.")]
WhereOption = Annotated[Optional[str], typer.Option(
    "--where", help="Only messages for which this JMESPath expression is true, e.g. "
                    "\"headers.tenant == 'acme'\" or \"age > `3600`\".", metavar="EXPR")]
LimitOption = Annotated[Optional[int], typer.Option(
    "--limit", help="Move at most N messages.", click_type=Count(), metavar="N")]
RateOption = Annotated[Optional[float], typer.Option(
    "--rate", help="At most N messages per second.", click_type=RATE, metavar="N")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Count per target; move nothing.")]
KafkaGroupOption = Annotated[Optional[str], typer.Option(
    "--group", help="Kafka: consumer group that records progress (default qctl-redrive; move: qctl-move).",
    metavar="GROUP")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    """qctl: one command line for the queues on Redis, RabbitMQ, Kafka, SQS and MQTT."""


@app.command(epilog=epilog("stats"))
@errors_to_exit_codes
def stats(
    queues: Annotated[Optional[list[str]], typer.Argument(
        help="Queue names or shell globs ('orders*'); all queues when omitted.", show_default=False,
        metavar="QUEUE...", autocompletion=complete_queues)] = None,
    url: UrlsOption = None,
    profile: ProfilesOption = None,
    output_format: OutputOption = "table",
    groups: Annotated[bool, typer.Option("--groups", help="One row per queue and consumer group.")] = False,
    watch: Annotated[Optional[float], typer.Option(
        "--watch", help="Redraw every SECONDS with in/out rates until Ctrl-C.", click_type=SECONDS,
        metavar="SECONDS")] = None,
    fail_above: Annotated[Optional[int], typer.Option(
        "--fail-above", help="Exit 5 if any depth > N.", click_type=Count(0), metavar="N")] = None,
    fail_lag_above: Annotated[Optional[int], typer.Option(
        "--fail-lag-above", help="Exit 5 if any lag > N.", click_type=Count(0), metavar="N")] = None,
    fail_age_above: Annotated[Optional[float], typer.Option(
        "--fail-age-above", help="Exit 5 if any oldest_age > SECONDS.", click_type=AGE_SECONDS,
        metavar="SECONDS")] = None,
    include_internal: Annotated[bool, typer.Option(
        "--include-internal", help="Kafka: also list internal topics (__consumer_offsets...).")] = False,
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Depth, in-flight, consumers, lag, dead letters and oldest age, one row per queue."""
    from qctl.commands import common
    from qctl.commands import stats as command

    common.check_format(output_format, allow_prom=True)
    run = command.StatsRun(patterns=queues or [], groups=groups, fail_above=fail_above,
                           fail_lag_above=fail_lag_above, fail_age_above=fail_age_above)
    chosen = common.targets(url or [], profile or [], management_url, timeout)
    given = {"--include-internal": include_internal, "--management-url": management_url}
    if watch:
        command.watch_stats(chosen, run, output_format, watch, quiet=quiet, given=given,
                            include_internal=include_internal)
        return
    command.run_stats(chosen, run, output_format, quiet=quiet, given=given, include_internal=include_internal)


@app.command(epilog=epilog("peek"))
@errors_to_exit_codes
def peek(
    queue: Annotated[str, typer.Argument(help="Queue, Redis key, Kafka topic or MQTT topic filter.",
                                         show_default=False, metavar="QUEUE", autocompletion=complete_queues)],
    count: Annotated[int, typer.Option("-n", "--count", help="How many messages.", click_type=Count(),
                                       metavar="N")] = 10,
    where: WhereOption = None,
    scan_limit: Annotated[int, typer.Option(
        "--scan-limit", help="With --where: read at most N messages to find the matches.", click_type=Count(),
        metavar="N")] = 10_000,
    from_position: Annotated[Optional[str], typer.Option(
        "--from", help="Start at: Redis list index or stream ID, Kafka offset, RabbitMQ stream offset.",
        metavar="POSITION")] = None,
    partition: Annotated[Optional[int], typer.Option(
        "--partition", help="Kafka partition.", click_type=Count(0, 1_000_000), metavar="P")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Start at this ISO time (Kafka, streams).",
                                                 metavar="ISO-TIME")] = None,
    group: Annotated[Optional[str], typer.Option(
        "--group", help="Kafka: start at this group's committed offsets (without joining it).",
        metavar="GROUP")] = None,
    dead: Annotated[bool, typer.Option(
        "--dead", help="Job frameworks: the queue's failed (dead) jobs instead of its waiting ones.")] = False,
    live: Annotated[bool, typer.Option(
        "--live", help="MQTT: tap live traffic for -n messages or --timeout seconds, not retained messages.")] = False,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Show messages without consuming, acknowledging or reordering them."""
    from qctl.codec import parse_iso
    from qctl.commands import common
    from qctl.commands.peek import run_peek
    from qctl.errors import UsageError
    from qctl.models import PeekRequest

    common.check_format(output_format)
    try:
        since_time = parse_iso(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since!r} is not an ISO 8601 time",
                         hint="for example 2026-11-21T08:00:00Z") from None
    request = PeekRequest(count=count, from_position=from_position, partition=partition, since=since_time,
                          group=group)
    given = {"--from": from_position, "--partition": partition, "--since": since, "--group": group,
             "--management-url": management_url, "--dead": dead, "--live": live}
    run_peek(common.target(url or [], profile or [], management_url, timeout, command="peek"), queue, request,
             output_format, where=where, scan_limit=scan_limit, quiet=quiet, given=given,
             flags={"dead": dead, "live": live})


@app.command(epilog=epilog("purge"))
@errors_to_exit_codes
def purge(
    queue: Annotated[Optional[str], typer.Argument(help="Queue, Redis key or Kafka topic to empty.",
                                                   show_default=False, metavar="QUEUE",
                                                   autocompletion=complete_queues)] = None,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Do not ask; required without a terminal.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Purge even a queue the profile protects.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be purged; change nothing.")] = False,
    backup: Annotated[Optional[Path], typer.Option(
        "--backup", help="First write every message to FILE (a new file, synced); delete only what was written.",
        metavar="FILE", dir_okay=False)] = None,
    where: WhereOption = None,
    dead: Annotated[bool, typer.Option(
        "--dead", help="Job frameworks: purge the queue's failed (dead) jobs instead of its waiting ones.")] = False,
    session: Annotated[Optional[str], typer.Option(
        "--session", help="MQTT: drop this client's offline persistent session and its queued messages "
                          "(instead of a QUEUE).", metavar="CLIENT_ID")] = None,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete every waiting message (or those --where selects), after confirmation (or --yes)."""
    from qctl.commands import common
    from qctl.commands.purge import PurgeRun, run_purge, run_purge_session
    from qctl.errors import UsageError

    common.check_format(output_format)
    chosen = common.target(url or [], profile or [], management_url, timeout, command="purge")
    given = {"--management-url": management_url, "--dead": dead, "--session": session}
    if session is not None:
        if queue is not None or backup is not None or where is not None or dead:
            raise UsageError("--session drops a client's session: it takes no QUEUE, --backup, --where or --dead")
        run_purge_session(chosen, session, output_format, yes=yes, force=force, dry_run=dry_run, quiet=quiet,
                          given=given)
        return
    if queue is None:
        raise UsageError("purge needs a QUEUE (or, on MQTT, --session CLIENT_ID)", hint="see 'qctl purge --help'")
    run_purge(chosen, queue, PurgeRun(yes=yes, force=force, dry_run=dry_run, backup=backup, where=where),
              output_format, quiet=quiet, given=given, flags={"dead": dead})


@app.command(epilog=epilog("redrive"))
@errors_to_exit_codes
def redrive(
    dlq: Annotated[str, typer.Argument(help="The dead-letter queue or topic to move from.", show_default=False,
                                       metavar="DLQ", autocompletion=complete_queues)],
    to: Annotated[Optional[str], typer.Option(
        "--to", help="Target queue; default: the original queue from each message's dead-letter metadata, "
                     "else the DLQ's name without its suffix.", metavar="QUEUE",
        autocompletion=complete_queues)] = None,
    where: WhereOption = None,
    limit: LimitOption = None,
    rate: RateOption = None,
    dry_run: DryRunOption = False,
    max_redrives: Annotated[Optional[int], typer.Option(
        "--max-redrives", help="Leave messages already redriven N times (counted as skipped).", click_type=Count(0),
        metavar="N")] = None,
    group: KafkaGroupOption = None,
    via_exchange: Annotated[bool, typer.Option(
        "--via-exchange", help="RabbitMQ: publish through the original exchange and routing keys "
                               "instead of straight to the queue.")] = False,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Move dead letters back to their queues; nothing leaves the DLQ before the target has it."""
    from qctl.commands import common
    from qctl.commands.redrive import run_redrive
    from qctl.errors import UsageError
    from qctl.redrive import RedriveRequest
    from qctl.selection import Selection

    common.check_format(output_format)
    if via_exchange and to is not None:
        raise UsageError("--via-exchange routes each message through its original exchange; it cannot go with --to",
                         hint="drop one of them")
    request = RedriveRequest(to=to, limit=limit, rate=rate, dry_run=dry_run, max_redrives=max_redrives,
                             where=Selection(where))
    chosen = common.target(url or [], profile or [], management_url, timeout, command="redrive")
    run_redrive(chosen, dlq, request, output_format, quiet=quiet,
                given={"--group": group, "--via-exchange": via_exchange, "--management-url": management_url},
                flags={"group": group or "qctl-redrive", "via_exchange": via_exchange})


@app.command(epilog=epilog("move"))
@errors_to_exit_codes
def move(
    source: Annotated[str, typer.Argument(
        help="QUEUE (on -u/-p), URL#QUEUE or PROFILE:QUEUE to move from.", show_default=False, metavar="SOURCE")],
    dest: Annotated[str, typer.Argument(
        help="QUEUE, URL#QUEUE or PROFILE:QUEUE to move to, on any broker.", show_default=False, metavar="DEST")],
    copy: Annotated[bool, typer.Option("--copy", help="Copy: leave every message in the source too.")] = False,
    where: WhereOption = None,
    limit: LimitOption = None,
    rate: RateOption = None,
    dry_run: DryRunOption = False,
    group: KafkaGroupOption = None,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Move (or --copy) messages between two queues, on one broker or across brokers."""
    from qctl import addressing
    from qctl.commands import common
    from qctl.commands.redrive import MoveRun, run_move
    from qctl.redrive import RedriveRequest
    from qctl.selection import Selection

    common.check_format(output_format)
    loaded = common.loaded_config()
    default = common.target(url or [], profile or [], management_url, timeout, command="move", loaded=loaded)
    src = addressing.resolve(source, loaded, default, timeout=timeout, management_url=management_url)
    dst = addressing.resolve(dest, loaded, default, timeout=timeout, management_url=management_url)
    request = RedriveRequest(limit=limit, rate=rate, dry_run=dry_run, where=Selection(where))
    run_move(src.target, src.queue, dst.target, dst.queue, MoveRun(copy=copy, request=request), output_format,
             quiet=quiet, source_flags={"group": group or "qctl-move"},
             given={"--group": group, "--management-url": management_url})


@app.command(epilog=epilog("backup"))
@errors_to_exit_codes
def backup(
    queue: Annotated[str, typer.Argument(help="Queue, Redis key or Kafka topic to copy.", show_default=False,
                                         metavar="QUEUE", autocompletion=complete_queues)],
    file: Annotated[Path, typer.Argument(help="A new file to write (never overwritten).", show_default=False,
                                         dir_okay=False, metavar="FILE")],
    where: WhereOption = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", help="Back up at most N messages.", click_type=Count(), metavar="N")] = None,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Copy a queue's messages to a backup file, deleting nothing."""
    from qctl.commands import common
    from qctl.commands.purge import run_backup

    common.check_format(output_format)
    chosen = common.target(url or [], profile or [], management_url, timeout, command="backup")
    run_backup(chosen, queue, file, output_format, where=where, limit=limit, quiet=quiet,
               given={"--management-url": management_url})


@app.command(epilog=epilog("restore"))
@errors_to_exit_codes
def restore(
    file: Annotated[Path, typer.Argument(help="A backup file, or peek -o jsonl output.", show_default=False,
                                         dir_okay=False, metavar="FILE")],
    to: Annotated[str, typer.Option("--to", help="Queue or topic to publish the messages to.",
                                    metavar="QUEUE", autocompletion=complete_queues)],
    skip: Annotated[int, typer.Option(
        "--skip", help="Resume: leave out the first N messages (a partial restore says N).", click_type=Count(0),
        metavar="N")] = 0,
    rate: Annotated[Optional[float], typer.Option(
        "--rate", help="At most N messages per second.", click_type=RATE, metavar="N")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and count; publish nothing.")] = False,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Publish a backup back to a queue: bodies, keys, headers and properties intact."""
    from qctl.commands import common
    from qctl.commands.restore import run_restore

    common.check_format(output_format)
    chosen = common.target(url or [], profile or [], management_url, timeout, command="restore")
    run_restore(chosen, file, to, output_format, dry_run=dry_run, skip=skip, rate=rate, quiet=quiet,
                given={"--management-url": management_url})


@app.command(epilog=epilog("ping"))
@errors_to_exit_codes
def ping(
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    debug: DebugOption = False,
) -> None:
    """Check a profile before putting it in cron: connect, authenticate, version, permissions, round trip."""
    from qctl.commands import common
    from qctl.commands.ping import run_ping

    common.check_format(output_format)
    chosen = common.target(url or [], profile or [], management_url, timeout, command="ping")
    run_ping(chosen, output_format, given={"--management-url": management_url})


@config_app.command("list", epilog=epilog("config list"))
@errors_to_exit_codes
def config_list(
    output_format: OutputOption = "table",
    debug: DebugOption = False,
) -> None:
    """One row per profile: name, URL (password masked), default."""
    from qctl import profiles_view

    profiles_view.list_profiles(output_format)


@config_app.command("show", epilog=epilog("config show"))
@errors_to_exit_codes
def config_show(
    name: Annotated[str, typer.Argument(help="Profile name.", show_default=False, metavar="NAME")],
    output_format: OutputOption = "table",
    debug: DebugOption = False,
) -> None:
    """A profile as qctl resolves it (passwords from env or file applied, then masked)."""
    from qctl import profiles_view

    profiles_view.show_profile(name, output_format)


@config_app.command("path", epilog=epilog("config path"))
@errors_to_exit_codes
def config_path(debug: DebugOption = False) -> None:
    """Print where qctl looks for its config file."""
    from qctl.config import config_path as path

    typer.echo(str(path()))


@app.command(epilog=epilog("completion"))
@errors_to_exit_codes
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", show_default=False, metavar="SHELL")],
    debug: DebugOption = False,
) -> None:
    """Print the shell completion script (as shipped in completions/)."""
    from qctl.generated import completion_script

    typer.echo(completion_script(shell), nl=False)


def main() -> None:
    collector.for_passes()
    try:
        code = run_app(app)
    except SystemExit as done:
        if COMPLETE_VAR not in os.environ:
            raise
        # Tab: the shell waits on this process.  Answer, then leave without the interpreter's teardown
        # (0.2-0.3 s of module and client finalisation on a loaded machine, measured: a fifth of the
        # 1.5 s an unreachable broker may hold the shell).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(done.code if isinstance(done.code, int) else 0)
    sys.exit(code)
