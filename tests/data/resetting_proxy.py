"""A userland proxy as docker-proxy behaves: it accepts on LISTEN and connects to TARGET; when
TARGET is not open yet it resets the client (SO_LINGER 0), else it relays both ways.

    python3 resetting_proxy.py LISTEN_PORT TARGET_PORT
"""
import socket
import struct
import sys
import threading


def relay(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client: socket.socket, target: int) -> None:
    try:
        backend = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        return
    threading.Thread(target=relay, args=(client, backend), daemon=True).start()
    relay(backend, client)


listen, target = int(sys.argv[1]), int(sys.argv[2])
server = socket.create_server(("0.0.0.0", listen), reuse_port=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn, target), daemon=True).start()
