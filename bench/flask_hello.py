"""The Flask app every WSGI server of the bench hosts: ``GET /hello`` -> a small JSON object.

The same file runs under our server (``httpd.py --wsgi flask_hello:app``), gunicorn (sync
and gthread) and waitress, so the Flask code is identical and the difference is the server.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(message="Hello, World!")
