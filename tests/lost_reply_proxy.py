#!/usr/bin/env python3
"""A TCP proxy in front of a Redis server that loses one reply on demand,
as a network that breaks after a command ran would: the command reaches
the server and runs, its reply never reaches the client, and the
connection is closed.

Armed by the file ARM (its content: a command's name, a space, and a
string to look for): the first such command a client sends that holds
that string (in what it sent since the server last answered) disarms it
(ARM is removed) and goes to the server; the server's next bytes on that
connection are dropped and both sides closed, and the file ARM.fired is
written. Runs until killed, or its parent (the test) is gone.

usage: lost_reply_proxy.py LISTEN_PORT SERVER_PORT ARM
"""
import os
import socket
import sys
import threading

listen_port, server_port, arm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def armed_by(sent):
    """Whether what the client sent since the server last answered holds
    the command ARM names with its string (then ARM is removed)."""
    try:
        with open(arm, "rb") as f:
            command, _, want = f.read().strip().partition(b" ")
    except FileNotFoundError:
        return False
    at = sent.rfind(b"\r\n" + command + b"\r\n")
    if not want or at < 0 or want not in sent[at:]:
        return False
    os.unlink(arm)
    return True


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
                    if not drop.is_set() and armed_by(bytes(sent)):
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
                with open(arm + ".fired", "w") as f:
                    f.write("dropped %d bytes\n" % len(chunk))
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
