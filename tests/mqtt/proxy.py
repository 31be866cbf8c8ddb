"""A TCP proxy in front of the real mosquitto that counts the MQTT packets each client sends.

It shows what no broker figure does: how many SUBSCRIBE packets a qctl run sent
("one subscription for a 10,000-topic tree, not one per topic").  Bytes pass
through unchanged in both directions; client-to-broker bytes are parsed just
enough (fixed header and remaining length) to count packet types.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from types import TracebackType

SUBSCRIBE, PUBLISH, UNSUBSCRIBE = 8, 3, 10


class CountingProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.counts: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def count(self, packet_type: int) -> int:
        with self.lock:
            return self.counts[packet_type]

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        buffer = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                if counted:
                    buffer = self._count(buffer + data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _count(self, buffer: bytes) -> bytes:
        while len(buffer) >= 2:
            length, multiplier, index = 0, 1, 1
            while True:
                if index >= len(buffer):
                    return buffer
                byte = buffer[index]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                index += 1
                if not byte & 0x80:
                    break
            if len(buffer) < index + length:
                return buffer
            with self.lock:
                self.counts[buffer[0] >> 4] += 1
            buffer = buffer[index + length:]
        return buffer

    def close(self) -> None:
        self._stop = True
        self.server.close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RefusesMQTT5(CountingProxy):
    """In front of the real broker, answers an MQTT 5 CONNECT as a 3.1.1-only broker does (CONNACK return code
    1, "unacceptable protocol version", then close) and passes any other connection through: the one thing
    the harness's mosquitto, which speaks both, cannot show."""

    def __init__(self, host: str, port: int) -> None:
        self.levels: list[int] = []
        super().__init__(host, port)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._first_packet, args=(client,), daemon=True).start()

    def _first_packet(self, client: socket.socket) -> None:
        data = b""
        while len(data) < 16:  # fixed header, remaining length, "MQTT" and the protocol level
            chunk = client.recv(16 - len(data))
            if not chunk:
                client.close()
                return
            data += chunk
        index = 1
        while data[index] & 0x80:
            index += 1
        level = data[index + 7]
        with self.lock:
            self.levels.append(level)
        if level == 5:
            client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))
            client.close()
            return
        upstream = socket.create_connection(self.target)
        upstream.sendall(data)
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
