"""A TCP proxy on 127.0.0.1 that a test can cut and restore: the database "goes away".

Two ways to cut:

- ``reset``: every open connection is closed and new ones are closed on accept (a server that
  crashed or was restarted);
- ``silent``: connections stay open but nothing is forwarded any more, new ones are accepted and
  never answered (a server that hangs, or a network that drops packets).

``restore()`` closes whatever the cut left hanging and forwards new connections again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal, Self

__all__ = ["TcpProxy"]

Mode = Literal["open", "reset", "silent"]


def _close(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on the socket; close() alone may not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``upstream`` until cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._mode: Mode = "open"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept")
        self._acceptor.start()

    @property
    def mode(self) -> Mode:
        return self._mode

    def cut(self, mode: Literal["reset", "silent"]) -> None:
        """Make the database unreachable (see the module docstring)."""
        with self._lock:
            self._mode = mode
            victims = list(self._open) if mode == "reset" else []
            if mode == "reset":
                self._open.clear()
        for sock in victims:
            _close(sock)

    def restore(self) -> None:
        """Close every connection left from the cut and forward new ones again."""
        with self._lock:
            victims = list(self._open) if self._mode != "open" else []
            if self._mode != "open":
                self._open.clear()
            self._mode = "open"
        for sock in victims:
            _close(sock)

    def close(self) -> None:
        self._closing.set()
        self._acceptor.join()
        _close(self._listener)
        with self._lock:
            victims = list(self._open)
            self._open.clear()
        for sock in victims:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            mode = self._mode
            if mode == "reset":
                _close(client)
            elif mode == "silent":
                with self._lock:
                    self._open.add(client)
            else:
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.update((client, upstream))
        self._threads = [t for t in self._threads if t.is_alive()]
        for source, target in ((client, upstream), (upstream, client)):
            thread = threading.Thread(target=self._pump, args=(source, target), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self._mode == "open":
                    target.sendall(data)
                # else: silent, the bytes vanish
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _close(source)
            _close(target)
