"""Start-up work, counted: what ``qctl --version``/``--help`` import, and what typer has to evaluate.

The goal is start-up within 1.2x of ``python -c "import typer"`` (bench/core.py times it); these tests
guard the causes instead of the clock: modules that are only needed when something is printed or a
URL is read, and string annotations (typer evaluates each one again on every run).
"""

from __future__ import annotations

import json
import subprocess
import sys

# Imported by nothing on the way to --version or --help (each was measured at start-up, see the comments
# where they are imported now): qctl.urls with hashlib (~20 ms), importlib.metadata with email and zipfile
# (~20 ms), json and csv (~3 ms), tabulate (~65 ms), asyncio (~50 ms), and every broker client.
NOT_AT_START = ("qctl.urls", "hashlib", "importlib.metadata", "email", "zipfile", "json", "csv", "tabulate", "asyncio",
                "redis", "pika", "kafka", "confluent_kafka", "botocore", "paho", "rich.console", "rich.table")


def _probe(code: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _loaded_after(args: list[str]) -> list[str]:
    code = ("import contextlib, io, sys\nfrom qctl.boundary import run_app\nfrom qctl.cli import app\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    run_app(app, {args!r})\n"
            f"loaded = sorted(m for m in {NOT_AT_START!r} if m in sys.modules)\n"
            "import json\nprint(json.dumps(loaded))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_version_and_help_import_nothing_they_do_not_use() -> None:
    for args in (["--version"], ["--help"], ["stats", "--help"], ["peek", "--help"]):
        assert _loaded_after(args) == [], args


def test_typer_evaluates_no_string_annotations() -> None:
    code = ("import json, qctl.cli as cli\n"
            "groups = [g.typer_instance for g in cli.app.registered_groups]\n"
            "callbacks = [c.callback for t in [cli.app, *groups] for c in t.registered_commands]\n"
            "callbacks += [t.registered_callback.callback for t in [cli.app, *groups] if t.registered_callback]\n"
            "strings = sum(isinstance(a, str) for f in callbacks for a in f.__annotations__.values())\n"
            "print(json.dumps({'callbacks': len(callbacks), 'strings': strings}))")
    found = _probe(code)
    assert int(str(found["callbacks"])) >= 10, found
    assert found["strings"] == 0, found  # `from __future__ import annotations` in qctl/cli.py costs ~40 ms a run


def test_a_builtin_scheme_reads_no_package_metadata() -> None:
    # redis-py reads its own metadata when imported; the RabbitMQ and Kafka adapters import nothing of it.
    code = ("import json, sys\nfrom qctl import registry\n"
            "for scheme in ('amqp', 'kafka'): registry.adapter_class(scheme)\n"
            "print(json.dumps({'metadata': 'importlib.metadata' in sys.modules, 'kafka': 'kafka' in sys.modules}))")
    assert _probe(code) == {"metadata": False, "kafka": False}
