"""A small real Flask app for tests/test_wsgi_frameworks.py (and the bench's JSON route)."""
from __future__ import annotations

import hashlib

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(message="Hello, World!")


@app.get("/json/<int:number>")
def json_route(number: int):
    return jsonify(number=number, square=number * number, args=request.args.to_dict(),
                   path=request.path, url=request.url)


@app.post("/upload")
def upload():
    upload = request.files["file"]
    data = upload.read()
    return jsonify(title=request.form["title"], filename=upload.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(),
                   content_length=request.content_length), 201


@app.get("/stream/<int:count>")
def stream(count: int):
    def lines():
        for i in range(count):
            yield f"line {i} of {request.args.get('name', 'stream')}\n"
    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("flask view failed")
