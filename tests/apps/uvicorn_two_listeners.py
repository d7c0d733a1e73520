"""uvicorn serving one app on two listeners (the Deployment page's "Management port" recipe).

The recipe of the Deployment page ("Management port"): uvicorn's command line binds one address,
but ``uvicorn.Server.run(sockets=...)`` serves every socket it is given.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from tests.apps.management_app import create_app


def main(api_port: int, management_port: int) -> None:
    """Bind both ports on 127.0.0.1 and serve the app on them (WSGI interface)."""
    sockets = []
    for port in (api_port, management_port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sockets.append(sock)
    config = uvicorn.Config(create_app(), interface="wsgi", log_level="error")
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
