"""A whoami server slow to stop, as a busy one may be: told to stop (SIGTERM), it keeps its port
open and answering for DELAY seconds more, then closes it and exits.

    python3 slow_to_close.py PORT DELAY
"""
import signal
import socket
import sys
import time

port, delay = int(sys.argv[1]), float(sys.argv[2])
server = socket.create_server(("0.0.0.0", port))
server.settimeout(0.05)
deadline = None


def stop(*_):
    global deadline
    deadline = time.monotonic() + delay


signal.signal(signal.SIGTERM, stop)
while deadline is None or time.monotonic() < deadline:
    try:
        conn, peer = server.accept()
    except TimeoutError:
        continue
    conn.sendall(f"name=whoami peer={peer[0]} port={port}\n".encode())
    conn.close()
server.close()
