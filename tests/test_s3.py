"""Media on S3 (moto's standalone server): memes and uploads store objects in the bucket,
and /media/ URLs keep working through the server (streamed with ETag and Range, or a 302
to a presigned URL)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from support import S3_ENV, ServerProcess, png, running_server, s3_client, wait_for

APPS = ["memes", "uploads"]


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    s3_client(s3_endpoint).create_bucket(Bucket="httpd-media")
    return "httpd-media"


def s3_settings(endpoint: str, bucket: str, **kw: Any) -> dict[str, Any]:
    return {"media_store": f"s3://{bucket}/site-a", "s3_endpoint_url": endpoint,
            "env": S3_ENV, "upload_poll_interval": 0.02, **kw}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, bucket: str):
    with running_server(tmp_path_factory.mktemp("s3"), APPS,
                        **s3_settings(s3_endpoint, bucket)) as s:
        yield s


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket, Prefix="site-a/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def post_meme(server: ServerProcess, image: bytes) -> dict[str, Any]:
    boundary = "s3-test"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        .encode() for name, value in (("title", "On S3"), ("description", "in a bucket")))
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
             f'filename="m.png"\r\n\r\n').encode() + image + f"\r\n--{boundary}--\r\n".encode()
    r = server.request("POST", "/memes", data=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    return r.json()


def image_path(meme: dict[str, Any]) -> str:
    url = next(v for v in meme.values() if isinstance(v, str) and "/media/memes/" in v)
    return urlsplit(url).path


def test_a_meme_image_is_an_object_served_with_etag_and_range(server, s3_endpoint, bucket):
    image = png(40, 30, os.urandom(40 * 30 * 3))
    meme = post_meme(server, image)
    path = image_path(meme)
    key = "site-a" + path.removeprefix("/media")
    assert key in keys(s3_endpoint, bucket)
    assert not (server.media_root / "memes" / path.rsplit("/", 1)[1]).exists()  # not on disk
    whole = server.get(path)
    assert whole.status_code == 200 and whole.content == image
    assert whole.headers["Content-Type"] == "image/png"
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    etag = whole.headers["ETag"]
    part = server.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == image[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(image)}"
    tail = server.get(path, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == image[-5:]
    assert server.get(path, headers={"If-None-Match": etag}).status_code == 304
    head = server.request("HEAD", path)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(image))
    assert server.get(path.replace(".png", "x.png")).status_code == 404
    assert server.request("DELETE", f"/memes/{meme['id']}").status_code == 204
    assert key not in keys(s3_endpoint, bucket)
    assert server.get(path).status_code == 404


def test_a_large_object_streams_through_intact(server):
    image = png(700, 700, os.urandom(700 * 700 * 3))  # ~1.5 MB, several pieces
    path = image_path(post_meme(server, image))
    r = server.get(path)
    assert r.status_code == 200 and hashlib.sha256(r.content).digest() == \
        hashlib.sha256(image).digest()


def test_uploads_are_stored_and_processed_from_the_bucket(server, s3_endpoint, bucket):
    content = b"hello from s3\n" * 100
    r = server.request("POST", "/upload/", files={"file": ("notes.txt", content)})
    assert r.status_code == 201, r.text
    path = urlsplit(r.json()["file"]).path
    assert "site-a" + path.removeprefix("/media") in keys(s3_endpoint, bucket)
    again = server.request("POST", "/upload/", files={"file": ("notes.txt", b"other")})
    assert urlsplit(again.json()["file"]).path != path  # a taken name gets a suffix
    rel_path = path.removeprefix("/media/")

    def processed() -> Any:
        with server.db() as conn:
            return conn.execute("SELECT sha256 FROM files WHERE rel_path = ? AND status = "
                                "'done'", (rel_path,)).fetchone()

    assert wait_for(processed, timeout=20)[0] == hashlib.sha256(content).hexdigest()
    got = server.get(path)
    assert got.content == content and got.headers["Content-Type"].startswith("text/plain")


def test_presigned_redirects(tmp_path: Path, s3_endpoint: str, bucket: str):
    settings = s3_settings(s3_endpoint, bucket, s3_presign_seconds=60)
    with running_server(tmp_path, APPS, **settings) as s:
        image = png(3, 3, bytes(range(27)))
        path = image_path(post_meme(s, image))
        r = s.get(path, allow_redirects=False)
        assert r.status_code == 302
        location = r.headers["Location"]
        assert location.startswith(s3_endpoint + "/httpd-media/site-a/memes/")
        assert requests.get(location, timeout=10).content == image


def test_a_missing_bucket_stops_the_start_with_one_clear_line(tmp_path: Path,
                                                              s3_endpoint: str):
    server = ServerProcess(tmp_path, APPS, **s3_settings(s3_endpoint, "no-such-bucket"))
    with pytest.raises(RuntimeError) as failed:
        server.start()
    assert "bucket 'no-such-bucket'" in str(failed.value)
