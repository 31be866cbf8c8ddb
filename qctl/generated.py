"""Files generated from the live command tree: shell completions and the man page.

``completions/`` and ``man/`` hold the checked-in output; a test regenerates
them and fails on drift (``python -m qctl.refresh_generated`` refreshes them).
The command tree is passed in, so this module never imports the CLI.
"""

from __future__ import annotations

from typing import Any

from qctl.boundary import COMPLETE_VAR
from qctl.errors import UsageError
from qctl.examples import EXAMPLES

SHELLS = {"bash": "qctl.bash", "zsh": "_qctl", "fish": "qctl.fish"}


# Typer's bash script hands qctl bash's COMP_WORDS, which bash splits at ':' and '=' (COMP_WORDBREAKS):
# a URL (redis://h:6379) or a Redis key (orders:dlq) would arrive in pieces.  This one splits the line
# at spaces only, and trims what bash will not replace (the part of the word up to its last ':' or '=').
BASH = """\
_qctl_completion() {
    local IFS=$'\\n' line=${COMP_LINE:0:$COMP_POINT} cur=${COMP_WORDS[COMP_CWORD]}
    local -a words
    IFS=$' \\t' read -ra words <<< "$line"
    local cword=${#words[@]}
    [[ $line == *[[:space:]] ]] && words+=("") || cword=$((cword - 1))
    local full=${words[cword]} lead=""
    [[ $full != "$cur" && $full == *"$cur" ]] && lead=${full%"$cur"}
    local -a replies
    replies=( $( env COMP_WORDS="${words[*]}" COMP_CWORD=$cword QCTL_COMPLETE_VAR=complete_bash $1 ) )
    COMPREPLY=()
    local reply
    for reply in "${replies[@]}"; do COMPREPLY+=("${reply#"$lead"}"); done
    return 0
}

complete -o default -F _qctl_completion qctl
"""


def completion_script(shell: str) -> str:
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}", hint="choose bash, zsh or fish")
    if shell == "bash":
        return BASH.replace("QCTL_COMPLETE_VAR", COMPLETE_VAR)
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="qctl", complete_var=COMPLETE_VAR, shell=shell)
    return script.rstrip("\n") + "\n"


# --- the man page ------------------------------------------------------------

MAN_HEADER = '.TH QCTL 1 "" "qctl {version}" "User Commands"'
MAN_PROSE = {
    "NAME": "qctl \\- queue depth, peek, purge, redrive, move and backups for Redis, RabbitMQ, Kafka, SQS and MQTT",
    "DESCRIPTION": (
        "qctl talks to Redis (and the job frameworks on it), RabbitMQ, Apache Kafka, Amazon SQS and MQTT brokers "
        "through one adapter per URL scheme. "
        "Its output, exit codes and errors are an API for shell scripts and cron: data goes to stdout, "
        "progress, warnings and errors to stderr, and every error is one line, "
        "\\fBqctl: error: WHAT\\fR.\n.PP\n"
        "Destructive commands ask first (or need \\fB\\-\\-yes\\fR) and have \\fB\\-\\-dry\\-run\\fR; "
        "moves acknowledge the source only after the target has the message."
    ),
}
MAN_CONFIG = (
    "The broker comes from \\fB\\-u\\fR/\\fB\\-p\\fR, then \\fBQCTL_URL\\fR/\\fBQCTL_PROFILE\\fR, then the config "
    "file's \\fBdefault_profile\\fR, then redis://localhost:6379/0. The config file is \\fB$QCTL_CONFIG\\fR, else "
    "\\fB$XDG_CONFIG_HOME/qctl/config.toml\\fR (~/.config/qctl/config.toml):\n"
    ".PP\n.nf\n"
    "default_profile = \"prod\"\n\n"
    "[profiles.prod]\n"
    "url = \"amqp://ops@rabbit.internal:5672/%2F\"\n"
    "password_env = \"RABBIT_PASSWORD\"        # or password_file = \"/etc/qctl/rabbit.pw\"\n"
    "management_url = \"https://rabbit.internal:15671\"\n"
    "ca_file = \"/etc/ssl/internal-ca.pem\"    # cert_file, key_file, verify = true\n"
    "protected = [\"payments*\"]               # purge refuses these unless \\-\\-force\n"
    "list_end = \"right\"                      # Redis lists: the end consumers pop first\n\n"
    "[profiles.prod.dead_letter]\n"
    "suffixes = [\".failed\"]\n"
    "prefixes = [\"failed:\"]\n"
    ".fi\n.PP\n"
    "A password is never printed: every URL shown anywhere has it replaced by ***. A config file readable by "
    "others that holds a password gets a warning."
)
MAN_EXAMPLES = (
    ".nf\n"
    "qctl stats \\-u redis://localhost:6379/0 'orders*'\n"
    "qctl peek \\-u amqp://guest:guest@localhost/%2F orders.dlq \\-n 5 \\-o jsonl\n"
    "qctl purge \\-p prod orders \\-\\-backup orders.jsonl \\-\\-yes\n"
    "qctl restore orders.jsonl \\-\\-to orders \\-p prod\n"
    "qctl redrive \\-u kafka://k1:9092 orders.DLT \\-\\-rate 500 \\-\\-max\\-redrives 3\n"
    "\n"
    "# cron: feed node_exporter's textfile collector every minute\n"
    "* * * * * qctl stats \\-p prod \\-o prom > /var/lib/node_exporter/qctl.prom.tmp && \\e\n"
    "          mv /var/lib/node_exporter/qctl.prom.tmp /var/lib/node_exporter/qctl.prom\n"
    "\n"
    "# cron: alert when a dead-letter queue fills up (exit 5)\n"
    "*/5 * * * * qctl stats \\-p prod 'orders*.dlq' \\-\\-fail\\-above 100 \\-q || notify\\-oncall\n"
    ".fi"
)
MAN_ENVIRONMENT = [
    ("QCTL_URL", "broker URL when no \\-u or \\-p is given"),
    ("QCTL_PROFILE", "profile when no \\-u or \\-p is given"),
    ("QCTL_CONFIG", "config file path"),
    ("XDG_CONFIG_HOME", "where qctl/config.toml is looked up"),
    ("QCTL_DEBUG", "1 to show tracebacks, like \\-\\-debug"),
    ("NO_COLOR", "no colour in terminal output"),
]


def man_page(root: Any) -> str:
    """``man/qctl.1``, from the command tree ``root`` (the click command of ``qctl.cli.app``), the
    registered adapters' own documentation (URLs, environment) and the fixed prose above."""
    from qctl import __version__
    from qctl.errors import EXIT_CODE_MEANINGS
    from qctl.registry import abouts

    documented = abouts()
    lines = [MAN_HEADER.format(version=__version__)]
    lines += [".SH NAME", MAN_PROSE["NAME"], ".SH SYNOPSIS",
              ".B qctl\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
              ".SH DESCRIPTION", MAN_PROSE["DESCRIPTION"], ".SH COMMANDS"]
    for path, command in commands(root):
        lines += _man_command(path, command)
    lines.append(".SH URLS")
    for about in documented:
        for usage, text in about.urls:
            extra = f" Needs the optional install {about.extra}." if about.extra else ""
            lines += [".TP", f".B {_roff(usage)}", _roff(text + extra)]
    lines += [".SH CONFIGURATION", MAN_CONFIG, ".SH ENVIRONMENT"]
    for name, text in MAN_ENVIRONMENT:
        lines += [".TP", f".B {name}", text]
    for about in documented:
        for name, text in about.environment:
            lines += [".TP", f".B {_roff(name)}", _roff(text)]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_CODE_MEANINGS.items():
        lines += [".TP", f".B {int(code)}", _roff(meaning)]
    lines += [".SH EXAMPLES", MAN_EXAMPLES, ".SH SEE ALSO",
              "README.md, docs/reference.md and docs/mapping.md in the qctl repository; \\fBredis-cli\\fR(1), "
              "\\fBrabbitmqctl\\fR(8), \\fBkcat\\fR(1), \\fBmosquitto_sub\\fR(1), \\fBaws\\fR(1)."]
    return "\n".join(lines) + "\n"


def commands(root: Any) -> list[tuple[str, object]]:
    """(path, command) for every leaf command of ``root``, depth first, in the app's order."""
    found: list[tuple[str, object]] = []

    def walk(prefix: str, group: object) -> None:
        for name, command in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            if getattr(command, "commands", None):
                walk(path, command)
            else:
                found.append((path, command))

    walk("", root)
    return found


def _man_command(path: str, command: object) -> list[str]:
    params = getattr(command, "params", [])
    args = " ".join(_argument(p) for p in params if p.param_type_name == "argument")
    lines = [".SS " + f'"qctl {path}"', f".B qctl {path}\n[\\fIOPTIONS\\fR] {args}".rstrip(), ".PP",
             _roff((getattr(command, "help", "") or "").strip().split("\n\n")[0])]
    examples = EXAMPLES.get(path, [])
    for param in params:
        if param.param_type_name != "option":
            continue
        names = ", ".join(_roff(opt) for opt in param.opts)
        metavar = f" \\fI{param.metavar}\\fR" if param.metavar and not getattr(param, "is_flag", False) else ""
        lines += [".TP", f"\\fB{names}\\fR{metavar}", _roff(param.help or "")]
    if examples:
        lines += [".PP", "Examples:", ".nf"]
        for description, line in examples:
            lines += [_roff(f"  # {description}"), _roff(f"  $ {line}")]
        lines.append(".fi")
    return lines


def _argument(param: object) -> str:
    name = f"\\fI{getattr(param, 'metavar', None) or str(getattr(param, 'name', '')).upper()}\\fR"
    if getattr(param, "nargs", 1) == -1:
        name += "..."
    return name if getattr(param, "required", True) else f"[{name}]"


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())
