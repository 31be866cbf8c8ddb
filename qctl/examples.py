"""Real examples for every command's ``--help`` (and the man page), in the style of gh and kubectl.

Keyed by the command's path (``"config show"``); tests/core/test_help.py fails for a command without them.
"""

from __future__ import annotations

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "stats": [
        ("every queue of a profile", "qctl stats -p prod"),
        ("page someone when a DLQ holds more than 100 messages (exit 5)", "qctl stats -p prod 'orders*.dlq' "
                                                                          "--fail-above 100"),
        ("alert when the oldest message waits over an hour", "qctl stats -p prod orders --fail-age-above 3600"),
        ("Kafka lag per consumer group, for node_exporter", "qctl stats -u kafka://k1:9092 --groups -o prom"),
    ],
    "peek": [
        ("the next 5 messages of a DLQ, as JSON lines", "qctl peek -p prod orders.dlq -n 5 -o jsonl"),
        ("only what one tenant sent", "qctl peek -p prod orders.dlq --where \"headers.tenant == 'acme'\""),
        ("a Kafka partition from an offset", "qctl peek -u kafka://k1:9092 orders --partition 2 --from 1200"),
    ],
    "purge": [
        ("empty a queue, keeping a backup first", "qctl purge -p prod orders --backup orders.jsonl --yes"),
        ("see what would go, change nothing", "qctl purge -p prod orders --dry-run"),
        ("delete only the poison messages", "qctl purge -p prod orders.dlq --where \"contains(body, 'v1')\" --yes"),
    ],
    "redrive": [
        ("dead letters back where they came from, 500 a second", "qctl redrive -p prod orders.dlq --rate 500"),
        ("count first", "qctl redrive -p prod orders.dlq --dry-run"),
        ("only timeouts, never a message redriven 3 times", "qctl redrive -p prod orders.dlq "
                                                            "--where \"contains(dead_letter.reason, 'Timeout')\" "
                                                            "--max-redrives 3"),
    ],
    "move": [
        ("between two queues of one broker", "qctl move -p prod orders.retry orders"),
        ("across brokers: a RabbitMQ DLQ into a Kafka topic",
         "qctl move 'amqp://ops@rabbit/%2F#orders.dlq' kafka:orders.replay --limit 1000"),
        ("copy, leaving the source as it is", "qctl move prod:orders staging:orders --copy"),
    ],
    "backup": [
        ("a snapshot of a queue, deleting nothing", "qctl backup -p prod orders.dlq orders-dlq.jsonl"),
        ("only one tenant's messages", "qctl backup -p prod orders acme.jsonl --where \"headers.tenant == 'acme'\""),
    ],
    "restore": [
        ("put a purge's backup back", "qctl restore orders.jsonl --to orders -p prod"),
        ("resume after a partial restore (it said --skip 41000)", "qctl restore orders.jsonl --to orders -p prod "
                                                                  "--skip 41000"),
        ("check a file, publish nothing", "qctl restore orders.jsonl --to orders -p prod --dry-run"),
    ],
    "ping": [
        ("is this profile ready for cron?", "qctl ping -p prod"),
        ("for provisioning scripts", "qctl ping -u amqp://ops@rabbit/%2F -o json"),
    ],
    "config list": [
        ("every profile, the default marked, passwords masked", "qctl config list"),
        ("the profile names, for a script", "qctl config list -o json | jq -r '.[].name'"),
    ],
    "config show": [
        ("what qctl will connect to for prod, and where its password comes from", "qctl config show prod"),
        ("its TLS files and dead-letter naming, for a provisioning check", "qctl config show prod -o json"),
    ],
    "config path": [
        ("where qctl reads its profiles ($QCTL_CONFIG, else ~/.config/qctl/config.toml)", "qctl config path"),
        ("who can read it (qctl warns when others can read a password)", "qctl config path | xargs ls -l"),
    ],
    "completion": [
        ("bash, for every user", "qctl completion bash > /etc/bash_completion.d/qctl"),
        ("zsh", "qctl completion zsh > \"${fpath[1]}/_qctl\""),
    ],
}


def epilog(command: str) -> str:
    """The help text's closing examples; ``\\b`` keeps click from re-wrapping them."""
    lines = ["\b", "Examples:"]
    for description, line in EXAMPLES[command]:
        lines += [f"  # {description}", f"  $ {line}"]
    return "\n".join(lines)
