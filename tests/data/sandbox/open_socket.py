"""Hostile: reach a server on the host's loopback (TCP, and an abstract unix socket).

Usage: open_socket.py PORT [ABSTRACT_NAME]. Exits 0 only if it delivered its message.
"""
import socket
import sys

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
    conn.sendall(b"pwned-tcp")
if len(sys.argv) > 2:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        unix.settimeout(5)
        unix.connect("\0" + sys.argv[2])
        unix.sendall(b"pwned-unix")
print("REACHED")
