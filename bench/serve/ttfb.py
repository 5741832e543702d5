#!/usr/bin/env python3
"""Cold-miss time to first byte against reading one origin chunk.

ttfb.py origin HOST PORT FILE...   prints one line per FILE: seconds to
    open, read to EOF (into one preallocated 2 MiB buffer) and close it.
ttfb.py evict HOST PORT FILE...    drops the FILEs' pages from the page
    cache (posix_fadvise DONTNEED; clean pages only, no privilege needed).
ttfb.py http HOST PORT PATH...     prints one line per PATH: seconds from
    connect() to the first byte of the answer (TCP connect, request, wait),
    then the status; reads the whole body before the next PATH, so no fill
    is still running when the next sample starts. With $CHORUS_KEY set,
    every request sends it (Authorization: Bearer).
"""
import os, socket, sys, time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
items = sys.argv[4:]
if mode == "evict":
    for f in items:
        fd = os.open(f, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    sys.exit(0)
if mode == "origin":
    rbuf = bytearray(2 << 20)
    for f in items:
        t0 = time.perf_counter()
        fd = os.open(f, os.O_RDONLY)
        while os.readv(fd, [rbuf]):
            pass
        os.close(fd)
        print("%.6f" % (time.perf_counter() - t0))
    sys.exit(0)

buf = bytearray(1 << 20)
auth = "Authorization: Bearer %s\r\n" % os.environ["CHORUS_KEY"] if os.environ.get("CHORUS_KEY") else ""
for p in items:
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n%sConnection: close\r\n\r\n" % (p, host, port, auth)).encode()
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    s.connect((host, port))
    s.sendall(req)
    n = s.recv_into(buf)
    t1 = time.perf_counter()
    head = bytes(buf[:n])
    while n:
        n = s.recv_into(buf)
    s.close()
    status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "none"
    print("%.6f %s" % (t1 - t0, status))
