"""A real Flask app and a real single-file Django project hosted with --wsgi's config key.

Both are in tests/wsgi_apps/; Flask's is imported from the server's current directory,
Django's from PYTHONPATH. Each gets a JSON route, a form POST with a file upload (small, and
big enough to be spooled to disk, with Content-Length and chunked) and a streamed response.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests
from support import REPO, running_server

APPS = REPO / "tests" / "wsgi_apps"
FRAMEWORKS = {"flask": "flask_app:app", "django": "django_app:application"}


@pytest.fixture(scope="module", params=list(FRAMEWORKS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip(request.param)
    work = tmp_path_factory.mktemp(request.param)
    env = {}
    if request.param == "flask":
        shutil.copy(APPS / "flask_app.py", work)  # imported from the current directory
    else:
        env["PYTHONPATH"] = str(APPS)
    with running_server(work, [], document_root=work, ready_path="/json/1", env=env,
                        wsgi_app=FRAMEWORKS[request.param],
                        max_body_size=16 * 1024 * 1024) as s:
        s.framework = request.param
        yield s


def test_json_route(server) -> None:
    r = server.get("/json/12?name=x%20y")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["content-length"]) == len(r.content)
    data = r.json()
    assert data["number"] == 12 and data["square"] == 144
    assert data["args"] == {"name": "x y"}
    assert data["path"] == "/json/12"
    assert data["url"] == f"http://127.0.0.1:{server.port}/json/12?name=x%20y"


def test_keep_alive_across_requests(server) -> None:
    with requests.Session() as session:
        answers = [session.get(server.url(f"/json/{n}"), timeout=10) for n in range(20)]
    assert [a.json()["square"] for a in answers] == [n * n for n in range(20)]


def multipart(title: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024], ids=["small", "spooled"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_form_post_with_a_file_upload(server, size: int, chunked: bool) -> None:
    data = os.urandom(size)
    body, content_type = multipart("My file", "data.bin", data)
    payload = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    r = server.request("POST", "/upload", data=payload, headers={"Content-Type": content_type})
    assert r.status_code == 201, r.text
    assert r.json() == {"title": "My file", "filename": "data.bin", "size": size,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "content_length": len(body)}


def test_streamed_response(server) -> None:
    with server.get("/stream/500?name=s", stream=True) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.headers
        lines = list(r.iter_lines())
    assert lines == [f"line {i} of s".encode() for i in range(500)]


def test_unknown_path_is_the_frameworks_404(server) -> None:
    r = server.get("/no/such/page")
    assert r.status_code == 404


def test_view_exception_is_a_500_and_the_worker_lives(server) -> None:
    before = sorted(server.worker_pids())
    assert server.get("/boom").status_code == 500
    assert f"RuntimeError: {server.framework} view failed" in Path(server.stderr_path).read_text()
    assert sorted(server.worker_pids()) == before
    assert server.get("/json/2").json()["square"] == 4
