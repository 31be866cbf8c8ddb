"""Real job frameworks (RQ, Celery, Sidekiq, BullMQ) for qctl's tests, installed from the project's files.

Nothing here runs a server: the frameworks' workers run against the harness Redis (127.0.0.1:16379),
one database each so tests never collide -- db 5 Sidekiq, db 6 BullMQ, db 7 RQ, db 8 Celery -- and
are started by the test fixtures in ``tests/frameworks/fixtures.py`` as subprocesses.  ``up`` only
installs what those subprocesses need and records where it is:

* RQ and Celery: a separate venv, ``.brokers/frameworks-venv/``, from
  ``tests/frameworks/python/requirements.txt``.  Not qctl's ``.venv``: that one is made from
  pyproject.toml, and kombu 5.7's ``redis`` extra pins ``packaging==26.3`` exactly while qctl's dev tools
  bring a newer packaging; the frameworks also must not leak into qctl's import-time benchmarks.
  (rq 3.0 and kombu 5.7 do accept redis-py 8, the version qctl uses; the venv pins the same 8.x.)
* Sidekiq 6.4: Debian's ``ruby-sidekiq`` (with the machine's Ruby), run as ``sidekiq -r worker.rb``.
* BullMQ: ``npm ci`` in ``tests/frameworks/bullmq/`` from its committed package-lock.json, with the
  machine's node (v20); ``node_modules`` stays git-ignored.

Each install is skipped when a marker holding the hash of its lock/requirements file says it is done,
so a warm ``up`` costs milliseconds.  Standard library only: this runs before qctl's venv exists.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from . import redis
from .common import BROKERS_DIR, REPO, apt_install, log, remove_env, run, update_env, which

NAME = "frameworks"
FRAMEWORKS_DIR = REPO / "tests" / "frameworks"
REQUIREMENTS = FRAMEWORKS_DIR / "python" / "requirements.txt"
BULLMQ_DIR = FRAMEWORKS_DIR / "bullmq"
VENV = BROKERS_DIR / "frameworks-venv"
SIDEKIQ = "/usr/bin/sidekiq"
NODE = "/usr/bin/node"

DATABASES = {"sidekiq": 5, "bullmq": 6, "rq": 7, "celery": 8}


def env() -> dict[str, str]:
    values = {f"QCTL_TEST_{name.upper()}_URL": f"redis://{redis.HOST}:{redis.MAIN.port}/{db}"
              for name, db in DATABASES.items()}
    values["QCTL_TEST_FRAMEWORKS_PYTHON"] = str(VENV / "bin" / "python")
    return values


def _digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()


def _done(marker: Path, digest: str) -> bool:
    return marker.exists() and marker.read_text() == digest


def python_venv() -> None:
    """The RQ/Celery venv; rebuilt from scratch when requirements.txt changes."""
    marker = VENV / ".qctl-installed"
    digest = _digest(REQUIREMENTS)
    if _done(marker, digest):
        return
    shutil.rmtree(VENV, ignore_errors=True)
    if run([sys.executable, "-m", "venv", str(VENV)], check=False).returncode != 0:
        apt_install({"python3-venv": "/usr/share/doc/python3-venv"})  # Debian ships venv apart
        shutil.rmtree(VENV, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(VENV)])
    run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(REQUIREMENTS)], timeout=900)
    marker.write_text(digest)
    log(f"{NAME}: RQ and Celery installed in {VENV}")


def sidekiq() -> None:
    apt_install({"ruby-sidekiq": SIDEKIQ})


def bullmq() -> None:
    """``npm ci`` when node_modules is missing or older than package-lock.json."""
    apt_install({"nodejs": NODE, "npm": "/usr/bin/npm"})
    marker = BULLMQ_DIR / "node_modules" / ".qctl-installed"
    digest = _digest(BULLMQ_DIR / "package-lock.json")
    if _done(marker, digest):
        return
    run([which("npm") or "/usr/bin/npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=BULLMQ_DIR, timeout=900)
    marker.write_text(digest)
    log(f"{NAME}: BullMQ installed in {BULLMQ_DIR / 'node_modules'}")


def up() -> dict[str, str]:
    redis.up()
    python_venv()
    sidekiq()
    bullmq()
    values = env()
    update_env(values)
    return values


def down() -> None:
    """Nothing runs between tests (workers are the fixtures' subprocesses); forget the env lines."""
    remove_env(list(env()))


def status() -> str:
    parts = [f"venv {'ready' if (VENV / '.qctl-installed').exists() else 'missing'}",
             f"sidekiq {'installed' if Path(SIDEKIQ).exists() else 'missing'}",
             f"bullmq {'installed' if (BULLMQ_DIR / 'node_modules' / '.qctl-installed').exists() else 'missing'}"]
    return f"{NAME}: " + ", ".join(parts) + f"; redis dbs {DATABASES}"
