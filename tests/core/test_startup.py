"""`qctl --help` and `--version` must not import broker clients (or rich tables)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("redis", "pika", "kafka", "confluent_kafka", "botocore", "tabulate", "rich.table", "rich.console")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print('LOADED=' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("LOADED="), proc.stdout
    return [name for name in line.removeprefix("LOADED=").split(",") if name]


def test_importing_the_cli_loads_no_broker_client() -> None:
    assert _loaded_after("import qctl.cli") == []


def test_help_and_version_load_no_broker_client() -> None:
    for args in (["--help"], ["--version"], ["stats", "--help"], ["purge", "--help"]):
        code = ("import sys\nfrom qctl.boundary import run_app\nfrom qctl.cli import app\n"
                f"import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
                f"    run_app(app, {args!r})")
        assert _loaded_after(code) == [], args


def test_python_dash_m_qctl_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "qctl", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("qctl ")
