"""A TCP proxy in front of the test database that can cut the line: an outage of
any server (the embedded 18, CI's PostgreSQL 15) without stopping it.

While cut, every open connection is reset and new ones are closed on arrival,
which is how a client sees a database that went away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import psycopg


class CuttableLine:
    """Forwards 127.0.0.1:<port> to ``upstream`` until ``cut()``; ``restore()`` mends it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="cuttable-line").start()

    def url(self, conninfo: str) -> str:
        """``conninfo`` pointed at this line instead of the server."""
        info = psycopg.conninfo.conninfo_to_dict(conninfo)
        info.update(host="127.0.0.1", port=str(self.port))
        return psycopg.conninfo.make_conninfo(**info)

    def cut(self) -> None:
        """Reset every connection and refuse new ones."""
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Let connections through again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    _close(source)
    _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def cuttable(conninfo: str) -> Iterator[CuttableLine]:
    """A line in front of the server ``conninfo`` names."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    line = CuttableLine(info.get("host") or "127.0.0.1", int(info.get("port") or 5432))
    try:
        yield line
    finally:
        line.close()
