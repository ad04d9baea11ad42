#!/usr/bin/env python3
"""A stand-in for a Redis server the tools must refuse, on a unix socket:
it answers INFO as a server of the version given (and no eviction, AOF on),
PING with PONG, and every other command with OK, until it is killed or no
client came for 60 s.

usage: fake_redis.py SOCKET VERSION
"""
import os
import socket
import sys
import threading

sock_path, version = sys.argv[1], sys.argv[2]
INFO = (f"# Server\r\nredis_version:{version}\r\n"
        "# Memory\r\nmaxmemory_policy:noeviction\r\n"
        "# Persistence\r\nloading:0\r\naof_enabled:1\r\n").encode()


def commands(buf):
    """The complete RESP commands at the start of buf, and what is left."""
    out = []
    while buf.startswith(b"*"):
        lines = buf.split(b"\r\n")
        try:
            n = int(lines[0][1:])
        except ValueError:
            break
        args, at, pos = [], 1, len(lines[0]) + 2
        while len(args) < n and at + 1 < len(lines):
            size = int(lines[at][1:])
            pos += len(lines[at]) + 2
            arg = buf[pos:pos + size]
            if len(arg) < size or buf[pos + size:pos + size + 2] != b"\r\n":
                return out, buf
            args.append(arg)
            pos += size + 2
            at = len(buf[:pos].split(b"\r\n")) - 1
        if len(args) < n:
            break
        out.append(args)
        buf = buf[pos:]
    return out, buf


def serve(c):
    buf = b""
    with c:
        while True:
            data = c.recv(65536)
            if not data:
                return
            cmds, buf = commands(buf + data)
            for args in cmds:
                name = args[0].upper()
                if name == b"INFO":
                    c.sendall(b"$%d\r\n%s\r\n" % (len(INFO), INFO))
                elif name == b"PING":
                    c.sendall(b"+PONG\r\n")
                else:
                    c.sendall(b"+OK\r\n")


if os.path.exists(sock_path):
    os.unlink(sock_path)
s = socket.socket(socket.AF_UNIX)
s.bind(sock_path)
s.listen(8)
s.settimeout(60)
try:
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
except OSError:
    pass
