"""A private MQTT broker (mosquitto 2.0 from Debian) for qctl's tests.

What runs where: one ``mosquitto -c .brokers/mqtt/mosquitto.conf`` process, started by
``common.spawn`` -- never the Debian package's system service (``common.apt_install`` keeps it from
starting) -- with three listeners on loopback, each with its own settings (``per_listener_settings``):

* 127.0.0.1:18830 plain TCP, anonymous clients allowed: ``QCTL_TEST_MQTT_URL``.
* 127.0.0.1:18831 plain TCP, user ``qctl``/``qctl-secret`` required: ``QCTL_TEST_MQTT_AUTH_URL``.
* 127.0.0.1:18832 TLS with a server certificate from the harness CA (``common.ensure_ca``), the same
  password required: ``QCTL_TEST_MQTTS_URL``, CA in ``QCTL_TEST_MQTT_CA_FILE``.

The password file is made with ``mosquitto_passwd -b``.  ``persistence true`` keeps retained messages,
sessions and their queued QoS 1/2 messages in ``.brokers/mqtt/data/mosquitto.db``, written on SIGTERM,
so ``restart`` finds them again; ``sys_interval 1`` refreshes ``$SYS/#`` every second for tests;
``max_queued_messages 100000`` lets an offline session hold a realistic backlog.  Run as root,
mosquitto would switch to the ``mosquitto`` user and lose access to ``.brokers/``, so the config says
``user root`` (ignored when not root).

Ready means every listener answers an MQTT 3.1.1 CONNECT with CONNACK 0 (``connack``, raw sockets:
standard library only).
"""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

from .common import (
    apt_install,
    broker_dir,
    ca_file,
    issue_certificate,
    log,
    port_open,
    read_pid,
    remove_env,
    run,
    spawn,
    stop_pid,
    update_env,
    wait_until,
)

NAME = "mqtt"
HOST = "127.0.0.1"
PLAIN_PORT, AUTH_PORT, TLS_PORT = 18830, 18831, 18832
PORTS = (PLAIN_PORT, AUTH_PORT, TLS_PORT)
TEST_USER, TEST_PASSWORD = "qctl", "qctl-secret"

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
START_TIMEOUT = 30.0


def home() -> Path:
    return broker_dir(NAME)


def pid_file() -> Path:
    return home() / "mosquitto.pid"


def log_file() -> Path:
    return home() / "mosquitto.log"


def conf_file() -> Path:
    return home() / "mosquitto.conf"


def env() -> dict[str, str]:
    auth = f"{TEST_USER}:{TEST_PASSWORD}@{HOST}"
    return {"QCTL_TEST_MQTT_URL": f"mqtt://{HOST}:{PLAIN_PORT}",
            "QCTL_TEST_MQTT_AUTH_URL": f"mqtt://{auth}:{AUTH_PORT}",
            "QCTL_TEST_MQTTS_URL": f"mqtts://{auth}:{TLS_PORT}",
            "QCTL_TEST_MQTT_CA_FILE": str(ca_file())}


def install() -> None:
    apt_install({"mosquitto": MOSQUITTO, "mosquitto-clients": MOSQUITTO_SUB})


def config() -> str:
    root = home()
    passwords = root / "passwd"
    return f"""\
# Written by tools/harness/mqtt.py; rewritten on every start.
per_listener_settings true
user root
persistence true
persistence_location {root / "data"}/
sys_interval 1
max_queued_messages 100000
retain_available true
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information

listener {PLAIN_PORT} {HOST}
allow_anonymous true

listener {AUTH_PORT} {HOST}
allow_anonymous false
password_file {passwords}

listener {TLS_PORT} {HOST}
allow_anonymous false
password_file {passwords}
cafile {ca_file()}
certfile {root / "server.crt"}
keyfile {root / "server.key"}
"""


def write_files() -> None:
    """Config, password file (mosquitto_passwd -b) and TLS certificate; the latter two made once."""
    root = home()
    (root / "data").mkdir(exist_ok=True)
    issue_certificate(root, "server")
    passwords = root / "passwd"
    if not passwords.exists():
        scratch = root / "passwd.partial"
        scratch.unlink(missing_ok=True)
        run([MOSQUITTO_PASSWD, "-c", "-b", str(scratch), TEST_USER, TEST_PASSWORD])
        scratch.chmod(0o600)
        scratch.replace(passwords)
    conf_file().write_text(config())


# --- MQTT CONNECT over a raw socket ---------------------------------------------

def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, user: str | None, password: str | None) -> bytes:
    flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + _string(client_id)
    body += (_string(user) if user is not None else b"") + (_string(password) if password is not None else b"")
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


def connack(port: int, *, user: str | None = None, password: str | None = None,
            tls: bool = False, cafile: Path | None = None) -> int:
    """CONNECT to a listener and return the CONNACK return code (0 = accepted); raises on I/O errors."""
    sock = socket.create_connection((HOST, port), timeout=2)
    if tls:
        context = ssl.create_default_context(cafile=str(cafile or ca_file()))
        sock = context.wrap_socket(sock, server_hostname=HOST)
    with sock:
        sock.sendall(connect_packet("qctl-harness", user, password))
        reply = sock.recv(4)
        if len(reply) < 4 or reply[0] != 0x20:
            raise ConnectionError(f"no CONNACK from {HOST}:{port}: {reply!r}")
        if reply[3] == 0:
            sock.sendall(b"\xe0\x00")  # DISCONNECT
        return reply[3]


def serving() -> bool:
    try:
        return (connack(PLAIN_PORT) == 0
                and connack(AUTH_PORT, user=TEST_USER, password=TEST_PASSWORD) == 0
                and connack(TLS_PORT, user=TEST_USER, password=TEST_PASSWORD, tls=True) == 0)
    except (OSError, ssl.SSLError):
        return False


# --- lifecycle ------------------------------------------------------------------

def running_pid() -> int | None:
    pid = read_pid(pid_file())
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(conf_file()).encode() in cmdline else None


def start() -> None:
    busy = [port for port in PORTS if port_open(port)]
    if busy:
        raise RuntimeError(f"{NAME}: {HOST}:{busy[0]} is in use but {pid_file()} names no live mosquitto; "
                           "stop whatever listens there before starting mqtt")
    write_files()
    proc = spawn([MOSQUITTO, "-c", str(conf_file())], log_file=log_file(), cwd=home())
    pid_file().write_text(f"{proc.pid}\n")
    try:
        wait_until(f"{NAME}: CONNACK on {HOST}:{PLAIN_PORT}/{AUTH_PORT}/{TLS_PORT}", serving,
                   timeout=START_TIMEOUT, proc=proc, log_file=log_file())
    except BaseException:
        stop_pid(pid_file(), grace=5)
        raise
    log(f"{NAME}: mosquitto serving on {HOST}:{PLAIN_PORT}, {AUTH_PORT} (password), {TLS_PORT} (TLS), "
        f"pid {proc.pid}")


def up() -> dict[str, str]:
    install()
    if running_pid() is None:
        start()
    else:
        wait_until(f"{NAME}: CONNACK on every listener", serving, timeout=START_TIMEOUT, log_file=log_file())
    values = env()
    update_env(values)
    return values


def terminate() -> None:
    """SIGTERM mosquitto (it saves mosquitto.db) and wait until its ports close; env and data kept."""
    pid = running_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        return
    stop_pid(pid_file(), grace=20)
    wait_until(f"{NAME}: ports to close", lambda: not any(port_open(port) for port in PORTS), timeout=15)
    log(f"{NAME}: stopped (pid {pid})")


def down() -> None:
    remove_env(list(env()))
    terminate()


def status() -> str:
    pid = running_pid()
    if pid is None:
        return f"{NAME}: stopped"
    state = "serving" if serving() else "NOT serving"
    return f"{NAME}: running pid {pid}, {state} on {HOST}:{PLAIN_PORT}, {AUTH_PORT} (auth), {TLS_PORT} (tls)"
