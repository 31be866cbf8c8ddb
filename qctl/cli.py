"""The typer app: each command parses its options, calls the core and renders.

Nothing here talks to a broker; that is ``qctl.adapters`` through
``qctl.registry``.  Heavy imports stay inside functions (``qctl --help`` must not
import a broker client, rich or tabulate).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qctl import __version__
from qctl.boundary import errors_to_exit_codes, run_app

app = typer.Typer(
    name="qctl",
    help="Queue depth, peek, purge and dead-letter redrive for Redis, RabbitMQ and Kafka.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Show the profiles in the config file (secrets masked).", no_args_is_help=True)
app.add_typer(config_app, name="config")

URL_HELP = "Broker URL (redis://, amqp://, kafka://...); overrides QCTL_URL and the profile's url."
UrlOption = Annotated[Optional[str], typer.Option(
    "-u", "--url", help=URL_HELP, show_default=False, metavar="URL")]
UrlsOption = Annotated[Optional[list[str]], typer.Option(
    "-u", "--url", help=URL_HELP + " Repeat for several brokers.", show_default=False, metavar="URL")]
ProfileOption = Annotated[Optional[str], typer.Option(
    "-p", "--profile", help="Profile from the config file.", metavar="NAME")]
ProfilesOption = Annotated[Optional[list[str]], typer.Option(
    "-p", "--profile", help="Profile from the config file. Repeat for several brokers.", metavar="NAME")]
OutputOption = Annotated[str, typer.Option(
    "-o", "--output", help="table, json, jsonl, csv (stats also prom).", metavar="FORMAT")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", help="Seconds to wait for the broker.", min=0.1, metavar="SECONDS")]
ManagementOption = Annotated[Optional[str], typer.Option(
    "--management-url", help="RabbitMQ management API, e.g. http://host:15672.", metavar="URL")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks (passwords still masked).")]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars or notes on stderr.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    """qctl: one command line for the queues on Redis, RabbitMQ and Kafka."""


@app.command()
@errors_to_exit_codes
def stats(
    queues: Annotated[Optional[list[str]], typer.Argument(
        help="Queue names or shell globs ('orders*'); all queues when omitted.", show_default=False,
        metavar="QUEUE")] = None,
    url: UrlsOption = None,
    profile: ProfilesOption = None,
    output_format: OutputOption = "table",
    groups: Annotated[bool, typer.Option("--groups", help="One row per queue and consumer group.")] = False,
    watch: Annotated[Optional[float], typer.Option("--watch", help="Redraw every SECONDS until Ctrl-C.",
                                                   min=0.1, metavar="SECONDS")] = None,
    fail_above: Annotated[Optional[int], typer.Option("--fail-above", help="Exit 5 if any depth > N.",
                                                      metavar="N")] = None,
    fail_lag_above: Annotated[Optional[int], typer.Option("--fail-lag-above", help="Exit 5 if any lag > N.",
                                                          metavar="N")] = None,
    include_internal: Annotated[bool, typer.Option(
        "--include-internal", help="Also list internal topics (Kafka __consumer_offsets...).")] = False,
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Depth, in-flight, consumers, lag and dead letters, one row per queue."""
    from qctl import commands

    commands.check_format(output_format, allow_prom=True)
    request = commands.StatsRun(patterns=queues or [], groups=groups, include_internal=include_internal,
                                fail_above=fail_above, fail_lag_above=fail_lag_above)
    targets = commands.targets(url or [], profile or [], management_url, timeout)
    if watch:
        commands.watch_stats(targets, request, output_format, watch)
        return
    commands.run_stats(targets, request, output_format, quiet=quiet)


@app.command()
@errors_to_exit_codes
def peek(
    queue: Annotated[str, typer.Argument(help="Queue, Redis key or Kafka topic.", show_default=False)],
    count: Annotated[int, typer.Option("-n", "--count", help="How many messages.", min=1)] = 10,
    from_position: Annotated[Optional[str], typer.Option(
        "--from", help="Start at: Redis list index or stream ID, Kafka offset, RabbitMQ stream offset.",
        metavar="POSITION")] = None,
    partition: Annotated[Optional[int], typer.Option("--partition", help="Kafka partition.", min=0)] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Start at this ISO time (Kafka, streams).",
                                                 metavar="ISO-TIME")] = None,
    group: Annotated[Optional[str], typer.Option(
        "--group", help="Kafka: start at this group's committed offsets (without joining it).")] = None,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Show messages without consuming, acknowledging or reordering them."""
    from qctl import commands
    from qctl.codec import parse_iso
    from qctl.errors import UsageError
    from qctl.models import PeekRequest

    commands.check_format(output_format)
    try:
        since_time = parse_iso(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since!r} is not an ISO 8601 time",
                         hint="for example 2026-11-21T08:00:00Z") from None
    request = PeekRequest(count=count, from_position=from_position, partition=partition, since=since_time,
                          group=group)
    commands.run_peek(commands.target(url, profile, management_url, timeout), queue, request,
                      output_format, quiet=quiet)


@app.command()
@errors_to_exit_codes
def purge(
    queue: Annotated[str, typer.Argument(help="Queue, Redis key or Kafka topic to empty.", show_default=False)],
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Do not ask; required without a terminal.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Purge even a queue the profile protects.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be purged; change nothing.")] = False,
    backup: Annotated[Optional[Path], typer.Option(
        "--backup", help="First write every message to FILE (peek JSONL), synced; delete only what was written.",
        metavar="FILE", dir_okay=False)] = None,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete every waiting message, after confirmation (or --yes)."""
    from qctl import commands

    commands.check_format(output_format)
    commands.run_purge(commands.target(url, profile, management_url, timeout), queue,
                       commands.PurgeRun(yes=yes, force=force, dry_run=dry_run, backup=backup),
                       output_format, quiet=quiet)


@app.command()
@errors_to_exit_codes
def redrive(
    dlq: Annotated[str, typer.Argument(help="The dead-letter queue or topic to move from.", show_default=False)],
    to: Annotated[Optional[str], typer.Option(
        "--to", help="Target queue; default: the original queue from each message's dead-letter metadata, "
                     "else the DLQ's name without its suffix.", metavar="QUEUE")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Move at most N messages.", min=1,
                                                 metavar="N")] = None,
    rate: Annotated[Optional[float], typer.Option("--rate", help="At most N messages per second.", min=0.001,
                                                  metavar="N")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count per target; move nothing.")] = False,
    max_redrives: Annotated[Optional[int], typer.Option(
        "--max-redrives", help="Leave messages already redriven N times (counted as skipped).", min=0,
        metavar="N")] = None,
    group: Annotated[str, typer.Option("--group", help="Kafka: consumer group that records progress.")] = (
        "qctl-redrive"),
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
    from qctl import commands
    from qctl.models import RedriveRequest

    commands.check_format(output_format)
    request = RedriveRequest(to=to, limit=limit, rate=rate, dry_run=dry_run, max_redrives=max_redrives,
                             group=group, via_original_exchange=via_exchange)
    commands.run_redrive(commands.target(url, profile, management_url, timeout), dlq, request,
                         output_format, quiet=quiet)


@app.command()
@errors_to_exit_codes
def restore(
    file: Annotated[Path, typer.Argument(help="A purge --backup file or peek -o jsonl output.",
                                         show_default=False, dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="Queue or topic to publish the messages to.",
                                    metavar="QUEUE")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the messages; publish nothing.")] = False,
    url: UrlOption = None,
    profile: ProfileOption = None,
    output_format: OutputOption = "table",
    timeout: TimeoutOption = 10.0,
    management_url: ManagementOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Publish a purge backup (or peek JSONL) back to a queue: bodies, keys and headers intact."""
    from qctl import commands

    commands.check_format(output_format)
    commands.run_restore(commands.target(url, profile, management_url, timeout), file, to, dry_run,
                         output_format, quiet=quiet)


@config_app.command("list")
@errors_to_exit_codes
def config_list(
    output_format: OutputOption = "table",
    debug: DebugOption = False,
) -> None:
    """One row per profile: name, URL (password masked), default."""
    from qctl import profiles_view

    profiles_view.list_profiles(output_format)


@config_app.command("show")
@errors_to_exit_codes
def config_show(
    name: Annotated[str, typer.Argument(help="Profile name.", show_default=False)],
    output_format: OutputOption = "table",
    debug: DebugOption = False,
) -> None:
    """A profile as qctl resolves it (passwords from env or file applied, then masked)."""
    from qctl import profiles_view

    profiles_view.show_profile(name, output_format)


@config_app.command("path")
@errors_to_exit_codes
def config_path(debug: DebugOption = False) -> None:
    """Print where qctl looks for its config file."""
    from qctl.config import config_path as path

    typer.echo(str(path()))


@app.command()
@errors_to_exit_codes
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", show_default=False)],
    debug: DebugOption = False,
) -> None:
    """Print the shell completion script (as shipped in completions/)."""
    from qctl.generated import completion_script

    typer.echo(completion_script(shell), nl=False)


def main() -> None:
    sys.exit(run_app(app))
