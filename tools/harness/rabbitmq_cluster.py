"""Three private RabbitMQ nodes joined into one cluster, for failover and quorum-queue tests (on demand).

What runs where: nodes ``qctl-c1@localhost``..``qctl-c3@localhost``, each started like the single node
in rabbitmq.py (the Debian package's ``rabbitmq-server`` in the foreground under ``common.spawn``,
never the system service) with its own ``HOME`` (and so its own copy of the shared Erlang cookie),
``RABBITMQ_MNESIA_BASE``, ``RABBITMQ_LOG_BASE``, config and pid file under
``.brokers/rabbitmq-cluster/<n>/``:

    node   AMQP    management  distribution
    c1     36672   36673       36674
    c2     36682   36683       36684
    c3     36692   36693       36694

``rabbitmqctl``'s hidden node would default to the distribution port + 10000 and up; every call is
moved to 36700..36709 instead, clear of all the ports above (see rabbitmq.py for why this matters).

``up`` starts the three in parallel (a clustered node waits at boot for its peers) and, for a node
not yet in the cluster, runs ``stop_app``, ``join_cluster qctl-c1@localhost``, ``start_app``; once
joined, the membership lives in each node's database, so later ``up`` calls just start them.
Users are those of the main node (``rabbitmq.ensure_users``: ``qctl``, ``qctl-limited``, and
``guest``), created once through c1's management API and replicated by the cluster.

For tests: ``kill_node(n)`` SIGKILLs node n (1..3), ``start_node(n)`` starts it again and waits
until it serves and is back in the cluster, ``quorum_leader(queue)`` names the node that leads a
quorum queue.  Standard library only: this runs before qctl's venv exists.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from . import rabbitmq
from .common import (
    apt_install,
    log,
    pid_alive,
    remove_env,
    run,
    update_env,
    wait_until,
)
from .rabbitmq import HOST, Node

NAME = "rabbitmq-cluster"
FOLDER = "rabbitmq-cluster"
CTL_DIST_PORTS = (36700, 36709)
NODES = tuple(Node(f"qctl-c{n}@localhost", f"{FOLDER}/{n}", 36662 + 10 * n, 36663 + 10 * n,
                   36664 + 10 * n, CTL_DIST_PORTS) for n in (1, 2, 3))
SEED = NODES[0]
JOIN_TIMEOUT = 120.0

ENV = {
    "QCTL_TEST_RABBITMQ_CLUSTER_URLS": ",".join(node.amqp_url() for node in NODES),
    "QCTL_TEST_RABBITMQ_CLUSTER_MANAGEMENT_URLS": ",".join(node.management_url for node in NODES),
}


def node(n: int) -> Node:
    """Node ``n`` of 1..3."""
    if n not in (1, 2, 3):
        raise ValueError(f"{NAME} has nodes 1..3, not {n}")
    return NODES[n - 1]


def write_cookie(member: Node) -> None:
    """Every node (and its CLI, via HOME) needs the same cookie; drawn once for the cluster."""
    shared = member.home.parent / "cookie"
    if not shared.exists():
        shared.write_text(secrets.token_hex(20))
        shared.chmod(0o400)
    cookie = member.home / ".erlang.cookie"
    if not cookie.exists() or cookie.read_text() != shared.read_text():
        cookie.unlink(missing_ok=True)
        cookie.write_text(shared.read_text())
        cookie.chmod(0o400)


def cluster_status(member: Node) -> dict[str, list[str]]:
    """``rabbitmqctl cluster_status`` as ``member`` sees it ({} if it does not answer)."""
    proc = run([str(rabbitmq.RABBITMQCTL), "-n", member.name, "cluster_status", "--formatter", "json"],
               env=rabbitmq.cli_env(member), timeout=60, check=False)
    if proc.returncode != 0:
        return {}
    try:
        status: dict[str, list[str]] = json.loads(proc.stdout[proc.stdout.find("{"):])
    except ValueError:
        return {}
    return status


def join(member: Node) -> None:
    """Make a freshly started node a member of c1's cluster."""
    started = time.monotonic()
    rabbitmq.rabbitmqctl("stop_app", node=member)
    rabbitmq.rabbitmqctl("join_cluster", SEED.name, node=member)
    rabbitmq.rabbitmqctl("start_app", node=member)
    rabbitmq.wait_serving(member, None)
    log(f"{NAME}: {member.name} joined {SEED.name} in {time.monotonic() - started:.1f}s")


def start_all(members: tuple[Node, ...]) -> None:
    """Launch the members that are not running, all at once, then wait for each."""
    missing = [member for member in members if rabbitmq.running_pid(member) is None]
    for member in missing:
        write_cookie(member)
    procs = {member.name: rabbitmq.launch(member) for member in missing}
    try:
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            list(pool.map(lambda member: rabbitmq.wait_serving(member, procs.get(member.name)), members))
    except BaseException:
        for member in missing:
            rabbitmq.abort(procs[member.name], member)
        raise


def clustered() -> bool:
    return set(cluster_status(SEED).get("running_nodes", [])) == {member.name for member in NODES}


def up() -> dict[str, str]:
    apt_install({"rabbitmq-server": str(rabbitmq.SERVER)})
    started = time.monotonic()
    start_all(NODES)
    for member in NODES[1:]:
        if member.name not in cluster_status(SEED).get("disk_nodes", []):
            join(member)
    wait_until(f"{NAME}: all three nodes running in one cluster", clustered, timeout=JOIN_TIMEOUT,
               log_file=SEED.node_log)
    rabbitmq.ensure_users(SEED)
    update_env(ENV)
    log(f"{NAME}: serving after {time.monotonic() - started:.1f}s")
    return dict(ENV)


def down() -> None:
    remove_env(list(ENV))
    with ThreadPoolExecutor(max_workers=len(NODES)) as pool:
        list(pool.map(rabbitmq.stop, NODES))


def status() -> str:
    parts = []
    for member in NODES:
        pid = rabbitmq.running_pid(member)
        state = "stopped" if pid is None else f"pid {pid}, amqp {HOST}:{member.amqp_port}"
        parts.append(f"{member.name} {state}")
    if all(rabbitmq.running_pid(member) is None for member in NODES):
        return f"{NAME}: stopped"
    return f"{NAME}: {'clustered' if clustered() else 'NOT clustered'}; " + "; ".join(parts)


# --- for failover tests ---------------------------------------------------------

def kill_node(n: int) -> int:
    """SIGKILL node ``n`` (its beam, no clean shutdown) and wait until it is gone; returns the pid."""
    member = node(n)
    pid = rabbitmq.running_pid(member)
    if pid is None:
        raise RuntimeError(f"{NAME}: {member.name} is not running")
    os.kill(pid, signal.SIGKILL)
    wait_until(f"{NAME}: {member.name} (pid {pid}) to die", lambda: not pid_alive(pid), timeout=15)
    log(f"{NAME}: killed {member.name} (pid {pid})")
    return pid


def start_node(n: int) -> float:
    """Start node ``n`` again (data kept) and wait until it serves and is back in the cluster; seconds."""
    member = node(n)
    started = time.monotonic()
    if rabbitmq.running_pid(member) is None:
        write_cookie(member)
        rabbitmq.start(member)
    wait_until(f"{NAME}: {member.name} back in the cluster", clustered, timeout=JOIN_TIMEOUT,
               log_file=member.node_log)
    return time.monotonic() - started


def quorum_leader(queue: str, vhost: str = "/") -> str | None:
    """The node leading quorum queue ``queue`` (e.g. ``qctl-c2@localhost``), asked of the first node that answers."""
    failures = []
    for member in NODES:
        if rabbitmq.running_pid(member) is None:
            continue
        proc = run([str(rabbitmq.RABBITMQCTL), "-n", member.name, "--quiet", "list_queues", "-p", vhost,
                    "name", "leader", "--formatter", "json"],
                   env=rabbitmq.cli_env(member), timeout=60, check=False)
        if proc.returncode != 0:
            failures.append(f"{member.name}: {proc.stdout.strip()[-300:]}")
            continue
        for row in json.loads(proc.stdout[proc.stdout.find("["):] or "[]"):
            if row.get("name") == queue:
                leader = row.get("leader")
                return str(leader) if leader else None
        return None
    raise RuntimeError(f"{NAME}: no node answered list_queues: {failures or 'none is running'}")


def node_number(name: str) -> int:
    """1..3 for a node name such as ``qctl-c2@localhost`` (what ``quorum_leader`` returns)."""
    return [member.name for member in NODES].index(name) + 1
