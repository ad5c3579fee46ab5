"""Minimal WSGI and ASGI apps for the Python peers of the benchmark.

gunicorn runs ``peer_apps:wsgi_app`` and uvicorn runs ``peer_apps:asgi_app``.
Both serve exactly what our server serves in the bench:

* ``GET /api/ping`` -> ``{"status": "ok"}`` (application/json)
* ``GET /<file>``   -> the file from the document root named by the
  ``BENCH_DOCROOT`` environment variable, read from disk on every request
  (no cache), 404 for anything missing or outside the root.

Each app does the least a real app would: the WSGI app hands the open file to
``wsgi.file_wrapper`` (gunicorn sends it with sendfile), the ASGI app reads it
and sends the bytes (ASGI has no sendfile path in uvicorn).
"""

import json
import mimetypes
import os

PING_BODY = json.dumps({"status": "ok"}).encode()
NOT_FOUND_BODY = b"Not Found\n"
DOCROOT = os.path.realpath(os.environ.get("BENCH_DOCROOT", "."))


def resolve(path):
    """Map a request path to ``(status, content_type, body_or_path)``.

    The third element is ``bytes`` for generated bodies and ``str`` (a file
    path) for files, so each app can send a file in its own best way.
    """
    if path == "/api/ping":
        return 200, "application/json", PING_BODY
    local = os.path.realpath(os.path.join(DOCROOT, path.lstrip("/")))
    if local.startswith(DOCROOT + os.sep) and os.path.isfile(local):
        content_type = mimetypes.guess_type(local)[0] or "application/octet-stream"
        return 200, content_type, local
    return 404, "text/plain", NOT_FOUND_BODY


def wsgi_app(environ, start_response):
    status, content_type, target = resolve(environ.get("PATH_INFO", "/"))
    reason = "200 OK" if status == 200 else "404 Not Found"
    if isinstance(target, bytes):
        start_response(reason, [("Content-Type", content_type),
                                ("Content-Length", str(len(target)))])
        return [target]
    handle = open(target, "rb")
    size = os.fstat(handle.fileno()).st_size
    start_response(reason, [("Content-Type", content_type),
                            ("Content-Length", str(size))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(handle, 65536)
    with handle:
        return [handle.read()]


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    status, content_type, target = resolve(scope["path"])
    if isinstance(target, str):
        with open(target, "rb") as handle:
            target = handle.read()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type.encode()),
                    (b"content-length", str(len(target)).encode())],
    })
    await send({"type": "http.response.body", "body": target})
