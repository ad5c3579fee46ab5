"""The nginx-style static settings, each against a real httpd.py over real files.

gzip and gzip_static, cache_control, multiple ranges and max_ranges, index, error_pages,
fallback_file and mime_types. Requests go over raw sockets, so nothing on the client side
decompresses or reassembles for us: every compressed answer is decompressed here and compared
byte for byte with the file, every multipart body is split here by its boundary, and HEAD is
compared with GET field by field.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import time
from pathlib import Path

import pytest
from conftest import SECRET
from support import parse_response, running_server

from framework.server import config
from framework.web import files as static_module
from framework.web.compression import GzipCache, accepts_gzip
from framework.web.files import StaticFiles, StaticOptions

GZ = {"Accept-Encoding": "gzip"}
CACHE = 256 * 1024  # the default static_cache_size: files above it go out with sendfile


def text(size: int, seed: int = 0) -> bytes:
    """Compressible text of exactly ``size`` bytes, different per seed."""
    line = f"/* line {{:06d}} of seed {seed}: the quick brown fox jumps over the lazy dog */\n"
    out = "".join(line.format(n) for n in range(size // len(line.format(0)) + 1))
    return out.encode()[:size]


FILES = {
    "app.js": text(20_000, 1),
    "style.css": text(20 * 1024, 2),
    "data.json": json.dumps([{"n": n, "name": f"item {n}"} for n in range(300)]).encode(),
    "page.svg": b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<!-- x -->" * 300 + b"</svg>",
    "big.txt": text(600 * 1024, 3),  # above the memory cache: sent from the file
    "small.css": b"body { color: red }",
    "noise.txt": random.Random(5).randbytes(4096),  # text type, but gzip cannot shrink it
    "image.png": b"\x89PNG\r\n\x1a\n" + text(8000, 4),  # compressible bytes, but an image
    "archive.zip": b"PK\x03\x04" + text(8000, 5),
    "icon.svgz": text(4000, 6),
    "pre.css": text(30_000, 7),
    "stale.css": text(30_000, 8),
    "assets/site.css": text(2000, 9),
    "assets/logo.png": b"\x89PNG\r\n\x1a\n" + b"p" * 100,
    "index.html": b"<html>root index</html>",
    "manual/default.htm": b"<html>manual default</html>",
    "both/index.html": b"<html>both: index.html</html>",
    "both/default.htm": b"<html>both: default.htm</html>",
    "none/readme.txt": b"no index here",
    "errors/404.html": b"<html>custom not found</html>" + b"<!-- pad -->" * 200,
    "errors/403.html": b"<html>custom forbidden</html>",
    "errors/405.html": b"<html>custom method not allowed</html>",
    "spa.html": b"<html>single page app shell</html>",
    "notes.md": b"# notes",
    "legacy.foo": b"caf\xe9",
    "thing.dat": b"\x00\x01",
    "Upper.BIN2": b"upper-case extension",
    "module.wasm": b"\x00asm\x01\x00\x00\x00" + b"\x00" * 2000,
}
# what pre.css.gz holds: made by another compressor (a header mtime and file name we never
# write), so its bytes prove that the server sent the file and did not compress on its own
PRE_GZ = gzip.compress(FILES["pre.css"], compresslevel=9, mtime=12345)
STALE_GZ = gzip.compress(b"an older version of stale.css", mtime=1)


def build_site(base: Path) -> Path:
    root = base / "site"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "pre.css.gz").write_bytes(PRE_GZ)
    (root / "stale.css.gz").write_bytes(STALE_GZ)
    old = (root / "stale.css").stat().st_mtime - 100
    os.utime(root / "stale.css.gz", (old, old))  # older than stale.css: must be ignored
    (base / "secret.css.gz").write_bytes(gzip.compress(SECRET))
    (root / "linked.css").write_bytes(text(5000, 10))
    (root / "linked.css.gz").symlink_to(base / "secret.css.gz")  # a .gz leading out
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("static-options"))


SITE_SETTINGS = {
    "cache_control": {"*.css": "max-age=3600", "/assets/*": "public, max-age=31536000",
                      "/index.html": "no-cache"},
    "index": ["index.html", "default.htm"],
    "error_pages": {"404": "/errors/404.html", "403": "errors/403.html",
                    "405": "/errors/405.html", "416": "/no-such-page.html"},
    "mime_types": {".md": "text/x-markdown", ".foo": "text/plain; charset=iso-8859-1",
                   ".dat": "application/x-thing", ".bin2": "text/x-upper",
                   ".js": "text/javascript"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, site: Path):
    with running_server(tmp_path_factory.mktemp("options-server"), [], document_root=site,
                        **SITE_SETTINGS) as s:
        yield s


@pytest.fixture(scope="module")
def spa_server(tmp_path_factory: pytest.TempPathFactory, site: Path):
    with running_server(tmp_path_factory.mktemp("spa-server"), [], document_root=site,
                        fallback_file="spa.html", error_pages={"403": "/errors/403.html"},
                        cache_control={"/spa.html": "no-store"}) as s:
        yield s


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory, site: Path):
    """Everything off: no gzip of any kind, ranges disabled."""
    with running_server(tmp_path_factory.mktemp("plain-server"), [], document_root=site,
                        gzip=False, gzip_static=False, max_ranges=0) as s:
        yield s


def fetch(server, target: str, method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request over a raw socket (nothing decodes the answer): status, fields, body."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    raw = server.exchange(f"{method} {target} HTTP/1.1\r\nHost: test\r\n{lines}"
                          f"Connection: close\r\n\r\n".encode("latin-1"))
    status, fields, body = parse_response(raw)
    if method != "HEAD" and status not in (204, 304):
        assert int(fields["content-length"]) == len(body)
    return status, fields, body


def head_matches_get(server, target: str, headers: dict[str, str] | None = None) -> None:
    get_status, get_fields, get_body = fetch(server, target, "GET", headers)
    head_status, head_fields, head_body = fetch(server, target, "HEAD", headers)
    assert head_status == get_status and head_body == b""
    for fields in (get_fields, head_fields):
        fields.pop("date")
        if fields.get("content-type", "").startswith("multipart/byteranges"):
            fields["content-type"] = "multipart/byteranges; boundary=*"  # random per answer
    assert head_fields == get_fields
    assert int(head_fields["content-length"]) == len(get_body)


def multipart_parts(fields: dict[str, str], body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1) by its boundary."""
    kind, _, boundary = fields["content-type"].partition("; boundary=")
    assert kind == "multipart/byteranges" and boundary
    delimiter = b"--" + boundary.encode()
    assert body.startswith(delimiter + b"\r\n") and body.endswith(b"\r\n" + delimiter + b"--\r\n")
    parts = []
    for chunk in body.split(b"\r\n" + delimiter)[:-1]:
        head, _, data = chunk.removeprefix(delimiter).partition(b"\r\n\r\n")
        part_fields = {}
        for line in head.decode("latin-1").split("\r\n"):
            if line:
                name, _, value = line.partition(":")
                part_fields[name.strip().lower()] = value.strip()
        parts.append((part_fields, data))
    return parts


# == gzip =====================================================================================

COMPRESSED = ["app.js", "style.css", "data.json", "page.svg", "big.txt", "pre.css"]


@pytest.mark.parametrize("name", COMPRESSED)
def test_compressible_files_are_gzipped_when_accepted(server, site: Path, name: str) -> None:
    data = (site / name).read_bytes()
    status, fields, body = fetch(server, "/" + name, headers=GZ)
    assert status == 200
    assert fields["content-encoding"] == "gzip"
    assert fields["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == data
    assert len(body) < len(data) // 4
    _, plain_fields, plain_body = fetch(server, "/" + name)
    assert plain_body == data and "content-encoding" not in plain_fields
    assert plain_fields["vary"] == "Accept-Encoding"  # a cache must key on it either way
    assert fields["etag"] != plain_fields["etag"]
    assert fields["etag"].endswith('-gz"') and not plain_fields["etag"].endswith('-gz"')
    assert fields["content-type"] == plain_fields["content-type"]


@pytest.mark.parametrize("name", ["app.js", "big.txt", "pre.css"])
def test_gzip_answers_are_the_same_bytes_every_time(server, name: str) -> None:
    """Every worker makes the same bytes for one version, so one -gz ETag names one body."""
    answers = {fetch(server, "/" + name, headers=GZ)[2] for _ in range(6)}
    etags = {fetch(server, "/" + name, headers=GZ)[1]["etag"] for _ in range(6)}
    assert len(answers) == 1 and len(etags) == 1


ACCEPT = [
    # (Accept-Encoding, gzip expected)
    ("gzip", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("gzip, deflate, br", True),
    ("deflate, gzip;q=0.5", True),
    ("gzip ; q=1", True),
    ("gzip;q=0.001", True),
    ("*", True),
    ("br, *;q=0.1", True),
    ("gzip;q=0", False),
    ("gzip;q=0.000", False),
    ("gzip;q=0, *", False),  # named with q=0 beats the wildcard
    ("*;q=0", False),
    ("br", False),
    ("deflate", False),
    ("identity", False),
    ("", False),
    ("gzip;q=0.5, identity;q=1", False),  # the client ranks identity higher
    ("gzip;q=1.5", False),  # not a qvalue: treated as 0
    ("gzip;q=abc", False),
    ("gzip;q=0.0001", False),
]


@pytest.mark.parametrize("accept,expected", ACCEPT)
def test_accept_encoding_qvalues(server, site: Path, accept: str, expected: bool) -> None:
    assert accepts_gzip(accept) is expected
    status, fields, body = fetch(server, "/app.js", headers={"Accept-Encoding": accept})
    assert status == 200
    assert ("content-encoding" in fields) is expected
    assert (gzip.decompress(body) if expected else body) == FILES["app.js"]


@pytest.mark.parametrize("name,why", [
    ("image.png", "an image"), ("archive.zip", "already compressed"),
    ("icon.svgz", "an svgz is gzip already"), ("small.css", "below gzip_min_length"),
    ("noise.txt", "gzip would not make it smaller"), ("module.wasm", "wasm, but mostly zeros"),
])
def test_never_compressed(server, site: Path, name: str, why: str) -> None:
    status, fields, body = fetch(server, "/" + name, headers=GZ)
    if name == "module.wasm":  # a positive control in the table: wasm is in gzip_types
        assert fields["content-encoding"] == "gzip" and gzip.decompress(body) == FILES[name]
        return
    assert status == 200 and "content-encoding" not in fields, why
    assert body == (site / name).read_bytes()
    if name in ("image.png", "archive.zip", "icon.svgz", "small.css"):
        assert "vary" not in fields  # nothing to negotiate


@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_range_requests_are_never_compressed(server, name: str) -> None:
    data = FILES[name]
    status, fields, body = fetch(server, "/" + name, headers={**GZ, "Range": "bytes=100-199"})
    assert status == 206 and "content-encoding" not in fields
    assert body == data[100:200]
    assert fields["content-range"] == f"bytes 100-199/{len(data)}"


def test_304_per_representation(server) -> None:
    _, gz_fields, _ = fetch(server, "/app.js", headers=GZ)
    _, id_fields, _ = fetch(server, "/app.js")
    gz_etag, id_etag = gz_fields["etag"], id_fields["etag"]
    status, fields, body = fetch(server, "/app.js", headers={**GZ, "If-None-Match": gz_etag})
    assert (status, body) == (304, b"")
    assert fields["etag"] == gz_etag and fields["vary"] == "Accept-Encoding"
    assert "content-encoding" not in fields and "content-type" not in fields
    status, fields, _ = fetch(server, "/app.js", headers={"If-None-Match": id_etag})
    assert status == 304 and fields["etag"] == id_etag
    # a validator of the other representation does not match
    status, fields, body = fetch(server, "/app.js", headers={**GZ, "If-None-Match": id_etag})
    assert status == 200 and gzip.decompress(body) == FILES["app.js"]
    status, fields, body = fetch(server, "/app.js", headers={"If-None-Match": gz_etag})
    assert status == 200 and body == FILES["app.js"]
    # If-Range with the gzip ETag: a range request is answered in identity, so the range
    # does not apply and the whole file comes back
    status, fields, body = fetch(server, "/app.js", headers={
        **GZ, "Range": "bytes=0-9", "If-Range": gz_etag})
    assert status == 200 and body == FILES["app.js"]


def test_a_changed_file_is_compressed_again(server, site: Path) -> None:
    path = site / "changing.js"
    path.write_bytes(text(5000, 20))
    first = fetch(server, "/changing.js", headers=GZ)
    assert gzip.decompress(first[2]) == text(5000, 20)
    time.sleep(0.01)
    path.write_bytes(text(6000, 21))
    time.sleep(1.05)  # open_file_cache_valid (1 s): the cached copy is checked again after it
    for _ in range(4):  # every worker sees the new version
        _, fields, body = fetch(server, "/changing.js", headers=GZ)
        assert gzip.decompress(body) == text(6000, 21)
        assert fields["etag"] != first[1]["etag"] and fields["etag"].endswith('-gz"')


@pytest.mark.parametrize("target,headers", [
    ("/app.js", GZ), ("/app.js", {}), ("/big.txt", GZ), ("/pre.css", GZ),
    ("/app.js", {**GZ, "Range": "bytes=0-9,100-199"}),
    ("/big.txt", {"Range": "bytes=0-9,100-199"}), ("/pre.css", {**GZ, "Range": "bytes=0-9,30-39"}),
    ("/missing", GZ), ("/../x", {}), ("/image.png", GZ), ("/style.css", {}), ("/notes.md", {}),
    ("/manual/", GZ), ("/", {"Range": "bytes=0-4"}),
])
def test_head_matches_get(server, target: str, headers: dict[str, str]) -> None:
    head_matches_get(server, target, headers)


def test_compressed_once_per_file_version(monkeypatch, tmp_path: Path) -> None:
    calls = []
    real = static_module.gzip_bytes

    def counting(data: bytes, level: int) -> bytes:
        calls.append(len(data))
        return real(data, level)

    monkeypatch.setattr(static_module, "gzip_bytes", counting)
    (tmp_path / "a.css").write_bytes(text(50_000, 30))
    files = StaticFiles(str(tmp_path), CACHE,  # a stat on every request: the change shows at once
                        StaticOptions.from_settings({}, open_file_cache_valid=0.0))
    for target in ("/a.css", "/a.css", "/./a.css", "//a.css"):  # one file behind every path
        assert gzip.decompress(files.handle("GET", target, "", {"accept-encoding": "gzip"}).body) \
            == text(50_000, 30)
    assert calls == [50_000]
    time.sleep(0.01)
    (tmp_path / "a.css").write_bytes(text(40_000, 31))
    assert gzip.decompress(files.handle("GET", "/a.css", "", {"accept-encoding": "gzip"}).body) \
        == text(40_000, 31)
    assert calls == [50_000, 40_000]


def test_the_compressed_cache_is_bounded() -> None:
    cache = GzipCache(budget=10_000)
    for n in range(100):
        cache.put(("f", n), bytes(1000))
        assert cache.size <= 10_000
    assert cache.get(("f", 0)) is None and cache.get(("f", 99)) is not None
    cache.get(("f", 90))  # used: kept over older entries
    cache.put(("f", 100), bytes(1000))
    assert cache.get(("f", 90)) is not None and cache.get(("f", 91)) is None
    cache.put(("huge", 0), bytes(20_000))  # larger than the budget: not kept at all
    assert cache.get(("huge", 0)) is None and cache.size <= 10_000


def test_gzip_off_compresses_nothing(plain_server) -> None:
    for name in ("app.js", "big.txt", "pre.css"):
        status, fields, body = fetch(plain_server, "/" + name, headers=GZ)
        assert status == 200 and body == FILES[name]
        assert "content-encoding" not in fields and "vary" not in fields
    status, fields, body = fetch(plain_server, "/openapi.json", headers=GZ)
    assert status == 200 and "content-encoding" not in fields
    json.loads(body)


# -- gzip_static -------------------------------------------------------------------------------

def test_gzip_static_sends_the_gz_file_as_it_is(server, site: Path) -> None:
    status, fields, body = fetch(server, "/pre.css", headers=GZ)
    assert status == 200
    assert body == PRE_GZ  # the file's own bytes, not ours
    assert gzip.decompress(body) == FILES["pre.css"]
    assert fields["content-type"] == "text/css; charset=utf-8"  # FILE's type, not gzip's
    assert fields["content-encoding"] == "gzip" and fields["vary"] == "Accept-Encoding"
    gz_stat = (site / "pre.css.gz").stat()
    assert fields["etag"] == f'"{gz_stat.st_size:x}-{gz_stat.st_mtime_ns:x}-gz"'
    _, plain, plain_body = fetch(server, "/pre.css")
    assert plain_body == FILES["pre.css"] and plain["vary"] == "Accept-Encoding"
    status, fields, _ = fetch(server, "/pre.css", headers={**GZ, "If-None-Match": fields["etag"]})
    assert status == 304


def test_gzip_static_goes_out_with_sendfile(site: Path) -> None:
    files = StaticFiles(str(site), CACHE)
    response = files.handle("GET", "/pre.css", "", {"accept-encoding": "gzip"})
    try:
        assert response.file is not None and response.body == b""
        assert os.readlink(f"/proc/self/fd/{response.file.fileno()}") == str(site / "pre.css.gz")
        assert (response.offset, response.length) == (0, len(PRE_GZ))
    finally:
        response.file.close()


def test_ranges_of_the_gz_file(server) -> None:
    status, fields, body = fetch(server, "/pre.css", headers={**GZ, "Range": "bytes=10-29"})
    assert status == 206 and fields["content-encoding"] == "gzip"
    assert body == PRE_GZ[10:30]
    assert fields["content-range"] == f"bytes 10-29/{len(PRE_GZ)}"
    status, fields, body = fetch(server, "/pre.css", headers={**GZ, "Range": "bytes=0-9,-10"})
    assert status == 206 and fields["content-encoding"] == "gzip"
    parts = multipart_parts(fields, body)
    assert [data for _, data in parts] == [PRE_GZ[:10], PRE_GZ[-10:]]
    assert parts[0][0]["content-type"] == "text/css; charset=utf-8"


def test_a_stale_gz_is_ignored(server, site: Path) -> None:
    status, _, body = fetch(server, "/stale.css", headers=GZ)
    assert status == 200 and body != STALE_GZ
    assert gzip.decompress(body) == FILES["stale.css"]  # compressed by the server instead


def test_a_gz_symlink_is_never_followed(server) -> None:
    status, _, body = fetch(server, "/linked.css", headers=GZ)
    assert status == 200 and SECRET not in gzip.decompress(body)
    assert gzip.decompress(body) == text(5000, 10)


def test_gzip_static_off_ignores_gz_files(plain_server) -> None:
    status, fields, body = fetch(plain_server, "/pre.css", headers=GZ)
    assert status == 200 and body == FILES["pre.css"] and "content-encoding" not in fields


def test_a_gz_file_that_appears_later_is_used(server, site: Path) -> None:
    (site / "later.css").write_bytes(text(3000, 40))
    assert fetch(server, "/later.css", headers=GZ)[1]["etag"].endswith('-gz"')
    made_here = fetch(server, "/later.css", headers=GZ)[2]
    later_gz = gzip.compress(text(3000, 40), mtime=999)
    (site / "later.css.gz").write_bytes(later_gz)
    assert made_here != later_gz
    time.sleep(1.2)  # presence of FILE.gz is looked up once a second
    for _ in range(4):
        assert fetch(server, "/later.css", headers=GZ)[2] == later_gz


# == JSON answers of the apps =================================================================

def test_json_api_answers_are_gzipped(server) -> None:
    status, fields, body = fetch(server, "/openapi.json", headers=GZ)
    assert status == 200 and fields["content-encoding"] == "gzip"
    assert fields["vary"] == "Accept-Encoding"
    assert fields["content-type"] == "application/json; charset=utf-8"
    _, plain_fields, plain = fetch(server, "/openapi.json")
    assert gzip.decompress(body) == plain and len(plain) > 1024
    assert "content-encoding" not in plain_fields and plain_fields["vary"] == "Accept-Encoding"
    json.loads(plain)
    head_matches_get(server, "/openapi.json", GZ)
    # below gzip_min_length: sent as it is, nothing to vary on
    status, fields, body = fetch(server, "/api/ping", headers=GZ)
    assert json.loads(body) == {"status": "ok"}
    assert "content-encoding" not in fields and "vary" not in fields
    status, fields, body = fetch(server, "/openapi.json", headers={"Accept-Encoding": "gzip;q=0"})
    assert body == plain and "content-encoding" not in fields


def test_app_paths_keep_their_json_envelope(server) -> None:
    """error_pages are for static paths: an unknown /api/ path stays the API's JSON 404."""
    status, fields, body = fetch(server, "/api/no-such-endpoint")
    assert status == 404 and fields["content-type"].startswith("application/json")
    assert b"custom not found" not in body and "error" in json.loads(body)


# == cache_control ============================================================================

@pytest.mark.parametrize("target,expected", [
    ("/style.css", "max-age=3600"),
    ("/assets/site.css", "max-age=3600"),  # "*.css" comes first: the first match wins
    ("/assets/logo.png", "public, max-age=31536000"),
    ("/", "no-cache"),  # the index file's path is what is matched
    ("/index.html", "no-cache"),
    ("/app.js", None),
    ("/manual/", None),
])
def test_cache_control(server, target: str, expected: str | None) -> None:
    for headers in ({}, GZ):
        status, fields, _ = fetch(server, target, headers=headers)
        assert status == 200
        assert fields.get("cache-control") == expected
    if expected is not None:
        etag = fetch(server, target)[1]["etag"]
        status, fields, _ = fetch(server, target, headers={"If-None-Match": etag})
        assert status == 304 and fields["cache-control"] == expected
        status, fields, _ = fetch(server, target, headers={"Range": "bytes=0-1"})
        assert status == 206 and fields["cache-control"] == expected


def test_no_cache_control_by_default_or_on_errors(server, plain_server) -> None:
    assert "cache-control" not in fetch(plain_server, "/style.css")[1]
    status, fields, _ = fetch(server, "/missing.css")
    assert status == 404 and "cache-control" not in fields


# == multiple ranges ==========================================================================

@pytest.mark.parametrize("name", ["app.js", "big.txt"])  # from memory, and by sendfile
def test_multiple_ranges_are_multipart(server, name: str) -> None:
    data = FILES[name]
    size = len(data)
    status, fields, body = fetch(server, "/" + name, headers={"Range": "bytes=0-9,20-29,-5"})
    assert status == 206 and "content-range" not in fields
    parts = multipart_parts(fields, body)
    expected = [(0, 9), (20, 29), (size - 5, size - 1)]
    assert [data for _, data in parts] == [data[a:b + 1] for a, b in expected]
    assert [part["content-range"] for part, _ in parts] == \
        [f"bytes {a}-{b}/{size}" for a, b in expected]
    whole_type = fetch(server, "/" + name)[1]["content-type"]
    assert {part["content-type"] for part, _ in parts} == {whole_type}


def test_ranges_keep_the_order_asked(server) -> None:
    data = FILES["big.txt"]
    status, fields, body = fetch(server, "/big.txt", headers={"Range": "bytes=5000-5009,0-9"})
    assert status == 206
    assert [d for _, d in multipart_parts(fields, body)] == [data[5000:5010], data[:10]]


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-99,50-149", 0, 149),  # overlapping
    ("bytes=0-99,100-199", 0, 199),  # adjacent
    ("bytes=" + ",".join(["0-"] * 16), 0, None),  # the same range over and over
    ("bytes=" + ",".join(f"{n}-{n + 500}" for n in range(0, 1600, 100)), 0, 2000),
])
def test_overlapping_ranges_do_not_amplify(server, header: str, start: int,
                                           end: int | None) -> None:
    data = FILES["big.txt"]
    end = len(data) - 1 if end is None else end
    status, fields, body = fetch(server, "/big.txt", headers={"Range": header})
    assert status == 206
    assert fields["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert body == data[start:end + 1] and len(body) <= len(data)


def test_more_ranges_than_max_ranges_get_the_whole_file(server) -> None:
    data = FILES["big.txt"]
    many = "bytes=" + ",".join(f"{n * 10}-{n * 10 + 1}" for n in range(17))
    status, fields, body = fetch(server, "/big.txt", headers={"Range": many})
    assert status == 200 and body == data
    sixteen = "bytes=" + ",".join(f"{n * 10}-{n * 10 + 1}" for n in range(16))
    status, fields, body = fetch(server, "/big.txt", headers={"Range": sixteen})
    assert status == 206
    assert [d for _, d in multipart_parts(fields, body)] == \
        [data[n * 10:n * 10 + 2] for n in range(16)]


def test_max_ranges_setting(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, max_ranges=1) as one:
        status, _, body = fetch(one, "/big.txt", headers={"Range": "bytes=0-9,20-29"})
        assert status == 200 and body == FILES["big.txt"]
        status, _, body = fetch(one, "/big.txt", headers={"Range": "bytes=20-29"})
        assert status == 206 and body == FILES["big.txt"][20:30]


def test_max_ranges_zero_disables_ranges(plain_server) -> None:
    status, fields, body = fetch(plain_server, "/big.txt", headers={"Range": "bytes=0-9"})
    assert status == 200 and body == FILES["big.txt"]
    assert fields["accept-ranges"] == "none"


def test_if_range_with_multiple_ranges(server) -> None:
    data = FILES["big.txt"]
    _, fields, _ = fetch(server, "/big.txt")
    for validator in (fields["etag"], fields["last-modified"]):
        status, got, body = fetch(server, "/big.txt", headers={
            "Range": "bytes=0-9,20-29", "If-Range": validator})
        assert status == 206 and [d for _, d in multipart_parts(got, body)] == \
            [data[:10], data[20:30]]
    for stale in ('"stale"', "W/" + fields["etag"], "Mon, 01 Jan 2001 00:00:00 GMT"):
        status, _, body = fetch(server, "/big.txt", headers={
            "Range": "bytes=0-9,20-29", "If-Range": stale})
        assert status == 200 and body == data, stale


def test_unsatisfiable_ranges_with_an_unreachable_error_page(server) -> None:
    """416 has an error page configured whose file is missing: the built-in page instead."""
    status, fields, body = fetch(server, "/big.txt", headers={"Range": "bytes=999999999-,-0"})
    assert status == 416 and fields["content-range"] == f"bytes */{len(FILES['big.txt'])}"
    assert b"416" in body


# == index ====================================================================================

@pytest.mark.parametrize("target,status,content", [
    ("/", 200, b"<html>root index</html>"),
    ("/manual/", 200, b"<html>manual default</html>"),  # the second name in the list
    ("/both/", 200, b"<html>both: index.html</html>"),  # the first one found wins
    ("/none/", 404, b"custom not found"),
])
def test_index_names(server, target: str, status: int, content: bytes) -> None:
    got, _, body = fetch(server, target)
    assert got == status and content in body


def test_default_index_is_index_html_only(plain_server) -> None:
    assert fetch(plain_server, "/manual/")[0] == 404
    assert fetch(plain_server, "/both/")[2] == b"<html>both: index.html</html>"


# == error_pages ==============================================================================

def test_error_pages(server) -> None:
    status, fields, body = fetch(server, "/missing.html")
    assert status == 404 and body == FILES["errors/404.html"]
    assert fields["content-type"] == "text/html; charset=utf-8"
    assert "etag" not in fields and "last-modified" not in fields
    status, fields, body = fetch(server, "/%2e%2e/secret.txt")
    assert status == 403 and body == FILES["errors/403.html"] and SECRET not in body
    status, fields, body = fetch(server, "/app.js", method="DELETE")
    assert status == 405 and body == FILES["errors/405.html"]
    assert fields["allow"] == "GET, HEAD"
    status, fields, body = fetch(server, "/%zz")  # 400 has no page configured
    assert status == 400 and fields["content-type"] == "text/html" and b"400" in body


def test_error_pages_are_compressed_and_head_matches(server) -> None:
    status, fields, body = fetch(server, "/missing.html", headers=GZ)
    assert status == 404 and fields["content-encoding"] == "gzip"
    assert gzip.decompress(body) == FILES["errors/404.html"]
    head_matches_get(server, "/missing.html", GZ)
    head_matches_get(server, "/missing.html")


def test_error_page_for_a_protocol_error(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site,
                        error_pages={"400": "/errors/403.html"}) as s:
        raw = s.exchange(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")  # no Host
        status, _, body = parse_response(raw)
        assert status == 400 and body == FILES["errors/403.html"]


def test_error_pages_cannot_leave_the_root(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site,
                        error_pages={"404": "../secret.css.gz", "403": "/dir/../../x"}) as s:
        for target in ("/missing", "/../x"):
            status, _, body = fetch(s, target)
            assert status in (403, 404) and SECRET not in body and b"<h1>" in body


# == fallback_file ============================================================================

@pytest.mark.parametrize("target", ["/some/client/route", "/missing.html", "/users/42?tab=1",
                                    "/none/"])
def test_fallback_serves_the_app_shell(spa_server, target: str) -> None:
    status, fields, body = fetch(spa_server, target)
    assert status == 200 and body == FILES["spa.html"]
    assert fields["cache-control"] == "no-store"  # the fallback file's own rule
    head_matches_get(spa_server, target)


def test_fallback_leaves_the_rest_alone(spa_server) -> None:
    assert fetch(spa_server, "/app.js")[2] == FILES["app.js"]  # files that exist
    assert fetch(spa_server, "/")[2] == FILES["index.html"]
    status, fields, body = fetch(spa_server, "/api/unknown")  # app paths
    assert status == 404 and "error" in json.loads(body)
    for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"):  # traversal
        status, _, body = fetch(spa_server, target)
        assert status == 403 and body == FILES["errors/403.html"]
    assert fetch(spa_server, "/%zz")[0] == 400
    status, fields, _ = fetch(spa_server, "/some/route", method="POST",
                              headers={"Content-Length": "0"})
    assert status == 405 and fields["allow"] == "GET, HEAD"  # GET and HEAD only
    assert fetch(spa_server, "/manual")[0] == 301  # a directory still redirects


def test_fallback_is_compressed_and_validated(spa_server, site: Path) -> None:
    status, fields, body = fetch(spa_server, "/route", headers=GZ)
    assert status == 200 and body == FILES["spa.html"]  # below gzip_min_length
    status, _, _ = fetch(spa_server, "/route", headers={"If-None-Match": fields["etag"]})
    assert status == 304


# == mime_types ===============================================================================

@pytest.mark.parametrize("name,expected", [
    ("notes.md", "text/x-markdown; charset=utf-8"),  # override, a text type: UTF-8 added
    ("legacy.foo", "text/plain; charset=iso-8859-1"),  # the configured charset stays
    ("thing.dat", "application/x-thing"),  # not text: no charset
    ("Upper.BIN2", "text/x-upper; charset=utf-8"),  # extensions match in any case
    ("app.js", "text/javascript; charset=utf-8"),  # a built-in type overridden
    ("style.css", "text/css; charset=utf-8"),  # built-in text types get UTF-8 too
    ("data.json", "application/json; charset=utf-8"),
    ("page.svg", "image/svg+xml"),
    ("image.png", "image/png"),
    ("module.wasm", "application/wasm"),
])
def test_mime_types(server, name: str, expected: str) -> None:
    assert fetch(server, "/" + name)[1]["content-type"] == expected


def test_default_types_without_overrides(plain_server) -> None:
    assert fetch(plain_server, "/app.js")[1]["content-type"] == \
        "application/javascript; charset=utf-8"
    assert fetch(plain_server, "/notes.md")[1]["content-type"] == "text/markdown; charset=utf-8"
    assert fetch(plain_server, "/thing.dat")[1]["content-type"] == "application/octet-stream"


# == the settings are checked at start-up =====================================================

@pytest.mark.parametrize("values", [
    {"gzip": "yes"}, {"gzip": 1}, {"gzip_min_length": -1}, {"gzip_types": "text/*"},
    {"gzip_types": [1]}, {"gzip_types": [""]}, {"gzip_static": None}, {"max_ranges": -1},
    {"cache_control": []}, {"cache_control": {"*": ""}}, {"cache_control": {"*": "a\r\nb"}},
    {"cache_control": {"*": 60}}, {"index": []}, {"index": ["a/b.html"]}, {"index": [".."]},
    {"index": "index.html"}, {"error_pages": {"200": "/ok.html"}},
    {"error_pages": {"abc": "/x.html"}}, {"error_pages": {"404": ""}},
    {"fallback_file": ["a"]}, {"mime_types": {"wasm": "application/wasm"}},
    {"mime_types": {".": "text/plain"}}, {"mime_types": {".x": "nonsense"}},
    {"mime_types": {".x": "text/"}}, {"mime_types": {".x": "text/plain\r\nX-Evil: 1"}},
    {"open_file_cache_valid": -0.5}, {"open_file_cache_valid": 60.0},
    {"open_file_cache_valid": float("nan")}, {"open_file_cache_valid": "1"},
])
def test_bad_static_settings_are_refused(values: dict) -> None:
    with pytest.raises(config.ConfigError):
        config.build({"apps": [], **values}, {})


def test_good_static_settings_are_kept() -> None:
    settings = config.build({"apps": [], **SITE_SETTINGS, "fallback_file": "spa.html"}, {})
    for key, value in SITE_SETTINGS.items():
        assert settings[key] == value
