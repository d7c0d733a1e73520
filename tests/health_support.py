"""Real network parts for the health tests: a TCP proxy that can stop answering, free ports.

No mocks: the database drivers talk to real sockets on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

__all__ = ["TcpProxy", "closed_port", "write_migrations"]

Mode = Literal["forward", "hang"]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TcpProxy:
    """A TCP server on a free port of 127.0.0.1, one thread per connection.

    ``"forward"`` relays each connection to ``target``; ``"hang"`` accepts connections, reads
    what the client sends and never answers (a database that is up but does not respond).
    :meth:`set_mode` drops every open connection first, as a restart would.
    """

    def __init__(self, target: tuple[str, int] | None = None, mode: Mode = "hang") -> None:
        self.target = target
        self.mode: Mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        # client socket -> upstream socket (None when hanging)
        self._connections: dict[socket.socket, socket.socket | None] = {}
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop)

    def open_connections(self) -> int:
        """How many client connections are open (a client that closed its end is not counted)."""
        with self._lock:
            return len(self._connections)

    def set_mode(self, mode: Mode) -> None:
        """Drop every open connection, then serve new ones in ``mode``."""
        with self._lock:
            self.mode = mode
        self._drop_all()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._drop_all()
        for thread in self._threads:
            thread.join(5)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="tcp-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _drop_all(self) -> None:
        with self._lock:
            connections = list(self._connections.items())
            self._connections.clear()
        for client, upstream in connections:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = None
            if self.mode == "forward" and self.target is not None:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
            with self._lock:
                self._connections[client] = upstream
            if upstream is None:
                self._start(self._pump, client, None)
            else:
                self._start(self._pump, client, upstream)
                self._start(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while data := source.recv(65536):
                if sink is not None:
                    sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            for client, upstream in list(self._connections.items()):
                if source in (client, upstream):
                    del self._connections[client]
        for sock in (source, sink):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        source.close()


def write_migrations(folder: Path, revisions: dict[str, str | tuple[str, ...] | None]) -> Path:
    """Write a real Alembic migrations folder: ``{revision: down_revision(s)}``, no-op bodies."""
    versions = folder / "versions"
    versions.mkdir(parents=True)
    (folder / "env.py").write_text("# not run by the health check\n")
    for revision, down in revisions.items():
        (versions / f"{revision}_step.py").write_text(
            f"revision = {revision!r}\n"
            f"down_revision = {down!r}\n"
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            "def upgrade() -> None:\n    pass\n\n\n"
            "def downgrade() -> None:\n    pass\n"
        )
    return folder
