"""A WSGI app that exercises PEP 3333 from the app's side, for tests/test_wsgi.py.

Every route but two is wrapped in ``wsgiref.validate.validator``, so a server that breaks
the spec fails there (the validator raises inside the app, which the test sees as a 500).
``/sendfile`` is not wrapped, because the validator hides the file_wrapper from the server;
``/bad-header`` is not, because the validator would refuse the header before the server can.
``close()`` of a streamed body writes a marker file into ``$WSGI_MARKS``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from wsgiref.validate import validator

MARKS = Path(os.environ.get("WSGI_MARKS", "."))
FILE = Path(os.environ.get("WSGI_FILE", __file__))
TEXT = [("Content-Type", "text/plain")]


def respond_json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def read_body(environ, mode):
    """The request body read the way ``mode`` says, as the list of pieces read."""
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if mode == "chunks":  # read(n) in small steps, then read(n) at the end gives b""
        pieces = []
        while True:
            piece = stream.read(7)
            if not piece:
                return pieces
            pieces.append(piece)
    if mode == "readline":
        pieces = []
        while True:
            line = stream.readline()
            if not line:
                return pieces
            pieces.append(line)
    if mode == "readlines":
        return stream.readlines()
    if mode == "iter":
        return list(stream)
    return [stream.read(length)]


def echo(environ, start_response):
    pieces = read_body(environ, environ.get("QUERY_STRING", "").partition("read=")[2] or "all")
    body = b"".join(pieces)
    return respond_json(start_response, {
        "cgi": {k: v for k, v in environ.items() if "." not in k},
        "wsgi": {k: repr(v) for k, v in environ.items() if k.startswith("wsgi.")
                 and k not in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper")},
        "has_file_wrapper": callable(environ.get("wsgi.file_wrapper")),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_length": len(body),
        "pieces": len(pieces),
        "pid": os.getpid(),
    })


class Marked:
    """An iterable whose close() leaves a marker file named after the request."""

    def __init__(self, name, chunks):
        self.name = name
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        (MARKS / self.name).write_text(str(os.getpid()))


def stream(environ, start_response):
    query = dict(p.partition("=")[::2] for p in environ["QUERY_STRING"].split("&") if p)
    count, size = int(query.get("n", "3")), int(query.get("size", "10"))
    headers = list(TEXT)
    if "length" in query:
        headers.append(("Content-Length", str(count * size)))
    start_response("200 OK", headers)

    def chunks():
        for i in range(count):  # count -1: without end
            yield (b"%d" % (i % 10)) * size
        while count < 0:
            yield b"x" * size
    return Marked(query.get("mark", "stream"), chunks())


def write_callable(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"written ")
    write(b"")
    write(b"then ")
    return [b"returned"]


def exc_before_head(environ, start_response):
    start_response("200 OK", TEXT)
    try:
        raise RuntimeError("before the head")
    except RuntimeError:
        start_response("503 Service Unavailable", TEXT, sys.exc_info())
    return [b"replaced by the error page"]


def exc_after_head(environ, start_response):
    start_response("200 OK", TEXT)

    def chunks():
        yield b"first part"
        try:
            raise RuntimeError("after the head")
        except RuntimeError:
            start_response("500 Internal Server Error", TEXT, sys.exc_info())  # re-raises
        yield b"never sent"
    return Marked("exc-after", chunks())


def file_wrapper(environ, start_response):
    handle = open(FILE, "rb")  # noqa: SIM115 - the server closes it through the wrapper
    handle.seek(int(environ["QUERY_STRING"] or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](handle, 4096)


class NoRead:
    """A real file that refuses read(): only sendfile can send it."""

    def __init__(self, path):
        self.file = open(path, "rb")  # noqa: SIM115

    def read(self, *args):
        raise AssertionError("read() called: the file was not sent by sendfile")

    def fileno(self):
        return self.file.fileno()

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()
        (MARKS / "sendfile").write_text("closed")


def sendfile(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](NoRead(FILE))


def fail(environ, start_response):
    raise RuntimeError("the app fails on purpose")


def status_teapot(environ, start_response):
    start_response("418 I'm a teapot", TEXT)
    return [b"short and stout"]


def no_content(environ, start_response):
    start_response("204 No Content", [])
    return []


def bad_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Bad", "a\r\nInjected: 1")])
    return [b"never sent"]


def hop_by_hop(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                              ("Content-Length", "5")])
    return [b"bye!!"]


ROUTES = {
    "/echo": echo, "/stream": stream, "/write": write_callable,
    "/exc-before": exc_before_head, "/exc-after": exc_after_head, "/file": file_wrapper,
    "/fail": fail, "/teapot": status_teapot, "/no-content": no_content,
    "/hop-by-hop": hop_by_hop,
}
UNVALIDATED = {"/sendfile": sendfile, "/bad-header": bad_header}
VALIDATED = {path: validator(route) for path, route in ROUTES.items()}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    route = UNVALIDATED.get(path)
    if route is not None:
        return route(environ, start_response)
    route = VALIDATED.get(path)
    if route is None:
        route = VALIDATED["/echo"]  # any other path echoes, so paths can be checked
    return route(environ, start_response)
