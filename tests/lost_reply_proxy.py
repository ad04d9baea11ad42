#!/usr/bin/env python3
"""A TCP proxy in front of a Redis server that loses one reply on demand,
as a network that breaks after a command ran would: the command reaches
the server and runs, its reply never reaches the client, and the
connection is closed.

Armed by the file ARM (its content: a command's name, a space, and a
regular expression to look for, over bytes: \\r\\n for the protocol's line
ends, \\Z for the end of what was sent): the first such command a client
sends that matches it (in what it sent since the server last answered,
from the command's name on) disarms it (ARM is removed) and goes to the
server; the server's next bytes on that connection are dropped and both
sides closed, and the file ARM.fired is written. A command name written
with a leading '-' (-EVALSHA) loses the command instead, as a network
that breaks before it reaches the server: it is not passed on (nor what
came with it in the same read), and both sides are closed. Runs until
killed, or its parent (the test) is gone.

usage: lost_reply_proxy.py LISTEN_PORT SERVER_PORT ARM
"""
import os
import re
import socket
import sys
import threading

listen_port, server_port, arm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def armed_by(sent):
    """Whether what the client sent since the server last answered holds
    the command ARM names, matching its expression (then ARM is removed):
    False, or what to lose, "reply" or "command"."""
    try:
        with open(arm, "rb") as f:
            command, _, want = f.read().strip().partition(b" ")
    except FileNotFoundError:
        return False
    lose = "reply"
    if command.startswith(b"-"):
        command, lose = command[1:], "command"
    at = sent.rfind(b"\r\n" + command + b"\r\n")
    if not want or at < 0 or not re.search(want, sent[at:]):
        return False
    os.unlink(arm)
    return lose


def fired(what):
    with open(arm + ".fired", "w") as f:
        f.write(what + "\n")


def relay(client):
    server = socket.create_connection(("127.0.0.1", server_port))
    drop = threading.Event()
    sent = bytearray()  # since the server last answered
    lock = threading.Lock()

    def close_both():
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def upstream():
        try:
            while True:
                chunk = client.recv(1 << 16)
                if not chunk:
                    break
                with lock:
                    sent.extend(chunk)
                    lose = not drop.is_set() and armed_by(bytes(sent))
                if lose == "command":
                    fired("lost a command of %d bytes" % len(chunk))
                    break
                if lose:
                    drop.set()
                server.sendall(chunk)
        except OSError:
            pass
        close_both()

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            chunk = server.recv(1 << 16)
            if not chunk:
                break
            if drop.is_set():
                fired("dropped a reply of %d bytes" % len(chunk))
                break
            with lock:
                sent.clear()
            client.sendall(chunk)
    except OSError:
        pass
    close_both()


def orphaned():
    parent = os.getppid()
    while os.getppid() == parent:
        threading.Event().wait(1)
    os._exit(0)


threading.Thread(target=orphaned, daemon=True).start()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", listen_port))
listener.listen(64)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
