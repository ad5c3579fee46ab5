"""Shared fixtures: a generated document root and servers started on free ports."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# the repository root, so that tests import framework/, handlers/ and apps/ however pytest runs
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import support
from support import PostgresCluster, running_server

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"


def build_docroot(base: Path) -> Path:
    """A site with the awkward names a static server meets, plus a secret just outside."""
    root = base / "www"
    (root / "dir1" / "dir12").mkdir(parents=True)
    (root / "dir2").mkdir()
    (root / "empty_dir").mkdir()
    (root / ".hidden_dir").mkdir()
    (root / ".well-known").mkdir()
    (root / "index.html").write_bytes(b"<html><body>root index</body></html>")
    (root / "dir1" / "index.html").write_bytes(b"<html>dir1 index</html>")
    (root / "dir1" / "dir12" / "index.html").write_bytes(b"<html>dir12 index</html>")
    (root / "dir2" / "page.html").write_bytes(b"<html>page</html>")
    (root / "space in name.txt").write_bytes(b"spaces ok")
    (root / "text..txt").write_bytes(b"double dot ok")
    (root / "a+b.txt").write_bytes(b"a plus is a plus")
    (root / "logo.v2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    (root / "photo.JPG").write_bytes(b"\xff\xd8\xff" + b"j" * 50)
    (root / "movie.swf").write_bytes(b"FWS" + b"s" * 20)
    (root / "app.js").write_bytes(b"var x = 1;")
    (root / "style.css").write_bytes(b"body{}")
    (root / "anim.gif").write_bytes(b"GIF89a" + b"g" * 10)
    (root / "pic.jpeg").write_bytes(b"\xff\xd8\xff" + b"p" * 10)
    (root / "unknown.zzz").write_bytes(b"?")
    (root / "кириллица.txt").write_bytes("привет".encode())
    (root / ".hidden").write_bytes(b"hidden")
    (root / ".hidden_dir" / "file.txt").write_bytes(b"hidden too")
    (root / ".well-known" / "security.txt").write_bytes(b"Contact: x")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (root / "medium.bin").write_bytes(os.urandom(100 * 1024))  # below the memory-cache limit
    (root / "noindex").mkdir()
    (root / "noindex" / "file.txt").write_bytes(b"a directory without index.html")
    (root / "dir with space").mkdir()
    (root / "dir with space" / "file name.txt").write_bytes(b"nested spaces ok")
    (root / "dir1" / ".env").write_bytes(b"hidden in a subdirectory")
    for name in TYPED_FILES:
        (root / name).write_bytes(b"typed " + name.encode())
    (base / "secret.txt").write_bytes(SECRET)
    (base / "index.html").write_bytes(SECRET)  # what /dir_out/ would serve if links were followed
    (root / "link_out").symlink_to(base / "secret.txt")
    (root / "dir_out").symlink_to(base)
    (root / "link_in.txt").symlink_to(root / "text..txt")
    (root / "dir_in").symlink_to(root / "dir1")
    return root


# extra files whose only purpose is their Content-Type (see test_static.py)
TYPED_FILES = ["page.htm", "upper.HTML", "icon.svg", "favicon.ico", "data.json", "doc.pdf",
               "font.woff2", "clip.mp4", "IMAGE.PNG", "readme.txt", "Archive.ZIP"]


@pytest.fixture(scope="session")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_docroot(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def static_server(tmp_path_factory: pytest.TempPathFactory, docroot: Path):
    """A server with no apps over the generated document root, shared by static tests."""
    with running_server(tmp_path_factory.mktemp("static"), [], document_root=docroot) as s:
        yield s


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL server for the whole session (each test server gets its own
    database on it). Missing PostgreSQL skips, except under CI=true, where it fails."""
    try:
        import psycopg  # noqa: F401 - the tests' own connections need it
        cluster = PostgresCluster().start()
    except (ImportError, OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"PostgreSQL is not available: {exc} {detail.decode(errors='replace')}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest):
    """Runs a whole app suite once per database backend: while the PostgreSQL run is on,
    every server the tests start gets a fresh database on the test cluster."""
    if request.param == "postgresql":
        support.POSTGRES = request.getfixturevalue("postgres_cluster")
    try:
        yield request.param
    finally:
        support.POSTGRES = None



@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """moto's standalone S3-compatible server on a loopback port, for the whole session.
    Missing moto or boto3 skips, except under CI=true, where it fails."""
    try:
        import boto3  # noqa: F401 - the server needs it, and so do the tests' checks
        import moto.server  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"moto[server] and boto3 are needed: {exc}")
        pytest.skip(f"moto[server] and boto3 are needed: {exc}")
    port = support.free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **support.S3_ENV})
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return support.requests.get(url + "/moto-api/", timeout=1).status_code < 500
        except support.requests.RequestException:
            return False

    try:
        support.wait_for(up, timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()

