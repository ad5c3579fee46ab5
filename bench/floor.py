#!/usr/bin/env python3
"""The floor: the pure Python ceiling on this machine.

Not a server: the least work a pure-Python epoll loop can do per request, so
the bench can show how much of the possible speed our server reaches. One
``select.epoll``, non-blocking sockets; for every complete request head (up to
the blank line) it sends the same bytes: a fixed head and the file given with
``--file``, read once at start. No parsing, no path, no stat, no open, no
Date. An HTTP/1.0 request (ab) gets ``Connection: close`` and the connection
is closed, as HTTP/1.0 without keep-alive wants.

    python3 bench/floor.py --port 8080 --file /path/to/index.html
"""

import argparse
import select
import socket
from pathlib import Path


def responses(body):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body, head + b"Connection: close\r\n\r\n" + body


def serve(host, port, body):
    keep, close = responses(body)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    listener.setblocking(False)
    lfd = listener.fileno()
    poller = select.epoll()
    poller.register(lfd, select.EPOLLIN)
    conns = {}  # fd -> [socket, unparsed bytes]

    def drop(fd, sock):
        poller.unregister(fd)
        del conns[fd]
        sock.close()

    while True:
        for fd, _ in poller.poll():
            if fd == lfd:
                while True:
                    try:
                        sock, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = [sock, b""]
                    poller.register(sock.fileno(), select.EPOLLIN)
                continue
            entry = conns[fd]
            sock = entry[0]
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                drop(fd, sock)
                continue
            buf = entry[1] + data if entry[1] else data
            out, closing = [], False
            end = buf.find(b"\r\n\r\n")
            while end >= 0:
                line_end = buf.find(b"\r\n")
                if buf[line_end - 8:line_end] == b"HTTP/1.0":
                    out.append(close)
                    closing = True
                    break
                out.append(keep)
                buf = buf[end + 4:]
                end = buf.find(b"\r\n\r\n")
            entry[1] = buf
            if out:
                data = out[0] if len(out) == 1 else b"".join(out)
                try:
                    sent = sock.send(data)
                    if sent < len(data):  # rare for 1 KB answers: finish blocking
                        sock.setblocking(True)
                        sock.sendall(data[sent:])
                        sock.setblocking(False)
                except OSError:
                    closing = True
            if closing:
                drop(fd, sock)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True, help="the bytes every answer carries")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, Path(args.file).read_bytes())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
