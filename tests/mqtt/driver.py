"""Test-side access to the real mosquitto, with paho-mqtt and never qctl.

For the contract suite a "queue" is a topic filter ``qctl-test/<name>/#`` and
its messages are retained messages on ``qctl-test/<name>/00000``,
``.../00001``...; "consumption order" is the order mosquitto sends a new
subscription its retained messages, which is the order the topics were
created.  The driver reads a tree the way any client can: subscribe, and stop
when a message it publishes to a private ``$``-topic comes back (mosquitto
sends it after the retained messages it queued for the subscription).
"""

from __future__ import annotations

import atexit
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from qctl.codec import header_bytes, header_value
from qctl.models import Message
from qctl.testing.driver import Capabilities
from qctl.urls import parse

PREFIX = "qctl-test"
PROPERTY_ATTRIBUTES = {"content_type": "ContentType", "correlation_data": "CorrelationData",
                       "response_topic": "ResponseTopic", "message_expiry_interval": "MessageExpiryInterval",
                       "payload_format_indicator": "PayloadFormatIndicator"}


class Client:
    """A connected paho client with its network thread running; messages land in ``inbox``."""

    def __init__(self, url: str, client_id: str | None = None, *, clean_start: bool = True,
                 session_expiry: int = 0, version: int = 5, manual_ack: bool = False) -> None:
        parsed = parse(url)
        self.client_id = client_id or f"test-{uuid.uuid4().hex[:12]}"
        protocol = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=protocol,
                                  clean_session=None if version == 5 else clean_start, reconnect_on_failure=False,
                                  manual_ack=manual_ack)
        self.client.max_inflight_messages_set(200)
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        self.inbox: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.session_present = False
        self.marker = ""
        self.marked = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        self.client.on_message = self._on_message
        properties = None
        if version == 5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if session_expiry:
                properties.SessionExpiryInterval = session_expiry
            self.client.connect(parsed.host, parsed.port or 1883, 60, clean_start=clean_start, properties=properties)
        else:
            self.client.connect(parsed.host, parsed.port or 1883, 60)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError(f"no CONNACK for {self.client_id}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.inbox.append(message)
            if message.topic == self.marker:
                self.marked.set()

    def subscribe(self, topic: str, qos: int = 0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=qos)
        assert done.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def wait(self, infos: list[mqtt.MQTTMessageInfo]) -> None:
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def retained(self, topic_filter: str) -> list[mqtt.MQTTMessage]:
        """The retained messages under ``topic_filter``, in the order the broker sends them."""
        marker = f"$qctl-test/marker/{self.client_id}/{uuid.uuid4().hex[:8]}"
        with self.lock:
            self.inbox.clear()
            self.marker = marker
            self.marked.clear()
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe([(topic_filter, SubscribeOptions(qos=0)), (marker, SubscribeOptions(qos=0))])
        assert done.wait(10)
        self.client.publish(marker, b"end", qos=0)
        if not self.marked.wait(120):
            raise AssertionError("the marker never came back")
        done.clear()
        self.client.on_unsubscribe = lambda *args: done.set()
        self.client.unsubscribe([topic_filter, marker])
        done.wait(10)
        with self.lock:
            found = [m for m in self.inbox if m.retain and m.topic != marker]
            self.inbox.clear()
        return found

    def take(self, count: int, timeout: float = 10) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.inbox) >= count:
                    break
            time.sleep(0.01)
        with self.lock:
            taken, self.inbox = self.inbox, []
        return taken

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def sys_figures(self) -> dict[str, str]:
        """``$SYS/broker/...`` values (short names) as of a live update that began after this call."""
        prefix = "$SYS/broker/"
        with self.lock:
            self.inbox.clear()
        self.subscribe(prefix + "#")
        deadline = time.monotonic() + 30
        updates = 0
        while time.monotonic() < deadline:
            with self.lock:
                updates = sum(1 for m in self.inbox if m.topic == prefix + "uptime" and not m.retain)
            if updates >= 2:  # the first may have been computed before the call: the second surely was not
                break
            time.sleep(0.05)
        assert updates >= 2, "no live $SYS update within 30 s"
        time.sleep(0.3)
        done = threading.Event()
        self.client.on_unsubscribe = lambda *args: done.set()
        self.client.unsubscribe(prefix + "#")
        done.wait(10)
        with self.lock:
            values = {m.topic[len(prefix):]: bytes(m.payload).decode() for m in self.inbox}
            self.inbox.clear()
        return values


def publish_properties(message: Message) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in message.properties.items():
        attribute = PROPERTY_ATTRIBUTES.get(name)
        if attribute == "CorrelationData":
            properties.CorrelationData = header_bytes(value)
        elif attribute is not None:
            setattr(properties, attribute, value)
    pairs = [(name, value if isinstance(value, str) else json.dumps(value)) for name, value in message.pairs()]
    if pairs:
        properties.UserProperty = pairs
    return properties


def to_message(message: mqtt.MQTTMessage, queue: str) -> Message:
    properties: dict[str, Any] = {"retain": bool(message.retain)}
    pairs: tuple[tuple[str, Any], ...] = ()
    if message.properties is not None:
        for name, attribute in PROPERTY_ATTRIBUTES.items():
            value = getattr(message.properties, attribute, None)
            if value is not None:
                properties[name] = header_value(value)
        pairs = tuple(getattr(message.properties, "UserProperty", None) or ())
    return Message(queue=queue, position=message.topic, body=bytes(message.payload), headers=dict(pairs),
                   header_pairs=pairs, properties=properties)


class MQTTDriver:
    capabilities = Capabilities(backend="mqtt", queue_type="retained", dlq_suffix=".dlq", carries_headers=True,
                                carries_properties=True, repeats_headers=True, dead_letter_metadata=False,
                                missing_queue_is_empty=True, stats_lists_queues=False, dead_letters=False,
                                restores_bare_rows=False, id_property="correlation_data",
                                accepts_foreign_messages=False)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.url = env["QCTL_TEST_MQTT_URL"]
        self.auth_url = env["QCTL_TEST_MQTT_AUTH_URL"]
        self.tls_url = env["QCTL_TEST_MQTTS_URL"]
        self.ca_file = env["QCTL_TEST_MQTT_CA_FILE"]
        self._client: Client | None = None
        # Retained trees outlive the test run (mosquitto persists them): clear every one made, at exit.
        self.made: set[str] = set()
        atexit.register(self.cleanup)

    def cleanup(self) -> None:
        for name in sorted(self.made):
            for _ in range(2):  # once more on a fresh connection (the broker may have been restarted)
                try:
                    self.delete(name)
                    break
                except Exception:
                    self._client = None
            else:
                break  # a broker that is gone: nothing more to do
        self.made.clear()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, f"driver-{uuid.uuid4().hex[:8]}")
        return self._client

    @contextmanager
    def connected(self, **kwargs: Any) -> Iterator[Client]:
        client = Client(self.url, **kwargs)
        try:
            yield client
        finally:
            client.close()

    def unique(self, prefix: str = "q") -> str:
        name = f"{PREFIX}/{prefix}-{uuid.uuid4().hex[:10]}/#"
        self.made.add(name)
        return name

    @staticmethod
    def base(name: str) -> str:
        assert name.endswith("/#"), name
        return name[:-2]

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.delete(name)
        base = self.base(name)
        infos = [self.client.publish(f"{base}/{index:05d}", message.body, retain=True,
                                     properties=publish_properties(message))
                 for index, message in enumerate(messages)]
        self.client.wait(infos)

    def make_placeholder(self, name: str, body: bytes) -> None:
        """A tree holding one retained message on a topic no other queue of the suite uses: make_queue's
        topics (00000, ...) restored or moved here must not land on it (that is refused: it would replace it)."""
        self.delete(name)
        self.client.wait([self.client.publish(f"{self.base(name)}/placeholder", body, retain=True)])

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        raise NotImplementedError("MQTT has no dead letters")

    def messages(self, name: str) -> list[Message]:
        return [to_message(message, name) for message in self.client.retained(name)]

    def contents(self, name: str) -> list[bytes]:
        return [bytes(message.payload) for message in self.client.retained(name)]

    def delete(self, name: str) -> None:
        found = self.client.retained(name)
        self.client.wait([self.client.publish(message.topic, b"", retain=True) for message in found])

    def bad_password_url(self) -> str:
        url = parse(self.auth_url)
        return f"mqtt://{url.username}:wrong-password@{url.host}:{url.port}"

    def unreachable_url(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        raise NotImplementedError("MQTT counts no reads")
