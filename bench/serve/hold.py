#!/usr/bin/env python3
"""hold.py HOST PORT N PATH [WARM]: first opens WARM connections that each
GET PATH and close; then opens N keep-alive connections that each GET PATH
once, read the whole answer and then sit idle. Prints "ready N" when all N
are idle, then holds them until stdin closes or it is killed."""
import socket, sys

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
warm = int(sys.argv[5]) if len(sys.argv) > 5 else 0
req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()


def one():
    s = socket.create_connection((host, port))
    s.sendall(req)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed before the answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit("answer: %r" % head[:80])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed in the body")
        body += chunk
    return s


for _ in range(warm):
    one().close()
held = [one() for _ in range(n)]
print("ready %d" % len(held), flush=True)
sys.stdin.read()
