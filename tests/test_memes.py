"""App D, the memes collection (API.md §D): every edge case of §D.4 against a real server.

Files and rows must agree through every failure (§D.2), so each rejected write is checked to
leave both the database and the media directory unchanged, and every image URL is fetched to
see it serve exactly the bytes uploaded (or 404 once replaced or deleted).
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from typing import Any

import pytest
import requests
from support import ServerProcess, running_server

# the whole suite runs on each database backend (conftest.py: backend)
pytestmark = pytest.mark.usefixtures("backend")

MiB = 1024 * 1024
IMAGE_LIMIT = 20 * MiB
MEME_KEYS = {"id", "title", "description", "created_at", "image_url"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, backend: str):
    with running_server(tmp_path_factory.mktemp("memes"), ["memes"]) as s:
        yield s


@pytest.fixture
def fresh(tmp_path):
    """A server of its own, for counts and orders that other tests must not disturb."""
    with running_server(tmp_path, ["memes"]) as s:
        yield s


# -- helpers ---------------------------------------------------------------------------------

def png(seed: int = 0, padding: int = 0) -> bytes:
    """A valid 1x1 PNG; ``seed`` makes it unique, ``padding`` bytes of ancillary chunk grow it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixel = zlib.compress(bytes([0, seed % 256, (seed >> 8) % 256, 0]))
    extra = chunk(b"teXt", b"pad\x00" + b"x" * padding) if padding else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + extra + chunk(b"IDAT", pixel) + chunk(b"IEND", b""))


def png_of_size(size: int) -> bytes:
    """A PNG of exactly ``size`` bytes (its text chunk takes up the slack)."""
    data = png(padding=size - len(png(padding=1)) + 1)
    assert len(data) == size
    return data


def jpeg(seed: int = 0) -> bytes:
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + bytes([seed % 256]) * 32 + b"\xff\xd9")


GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"


def post(server: ServerProcess, title: Any = "A meme", description: Any = "Funny enough",
         image: bytes | None = None, filename: str = "meme.png",
         names: tuple[str, str, str] = ("image", "title", "description")) -> requests.Response:
    """POST /memes a form as a browser would send it; a None field is left out."""
    image_name, title_name, description_name = names
    parts = [(name, None, value.encode()) for name, value in
             ((title_name, title), (description_name, description)) if value is not None]
    if image is not None:
        parts.append((image_name, filename, image))
    return send_form(server, "POST", "/memes", *parts)


def create(server: ServerProcess, seed: int = 0, **kw: Any) -> dict[str, Any]:
    kw.setdefault("image", png(seed))
    r = post(server, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def form(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A hand-built multipart body: (name, filename or None, content) per part."""
    boundary = "memes-test-boundary"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                 + content + b"\r\n")
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def send_form(server: ServerProcess, method: str, path: str,
              *parts: tuple[str, str | None, bytes]) -> requests.Response:
    body, headers = form(*parts)
    return server.request(method, path, data=body, headers=headers)


def image_files(server: ServerProcess) -> list[str]:
    directory = server.media_root / "memes"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def spooled(server: ServerProcess) -> list[str]:
    directory = server.media_root / ".incoming"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def state(server: ServerProcess) -> tuple:
    """Everything a write can change: the rows, the stored images, the upload spool."""
    return server.snapshot("memes", "sqlite_sequence"), image_files(server), spooled(server)


@contextlib.contextmanager
def unchanged(server: ServerProcess):
    before = state(server)
    yield
    assert state(server) == before


def rejected(server: ServerProcess, response: requests.Response, status: int,
             field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert field in error["fields"], error
    return error


def key_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


# -- POST /memes ---------------------------------------------------------------------------------

def test_create_answers_201_with_location_and_serves_the_image(server):
    image = png(1)
    before = image_files(server)
    r = post(server, title="Distracted boyfriend", description="A classic", image=image)
    assert r.status_code == 201, r.text
    meme = r.json()
    assert set(meme) == MEME_KEYS
    assert type(meme["id"]) is int
    assert r.headers["Location"] == f"/memes/{meme['id']}"
    assert (meme["title"], meme["description"]) == ("Distracted boyfriend", "A classic")
    assert meme["created_at"].endswith("Z") and len(meme["created_at"]) == 27
    assert meme["image_url"].startswith(f"http://127.0.0.1:{server.port}/media/memes/")
    assert key_of(meme["image_url"]).endswith(".png")
    assert image_files(server) == sorted([*before, key_of(meme["image_url"])])
    got = requests.get(meme["image_url"], timeout=10)
    assert got.status_code == 200 and got.content == image
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in got.headers
    assert server.get(f"/memes/{meme['id']}").json() == meme
    row = server.db().execute("SELECT image_mime, created_at, updated_at FROM memes WHERE id = ?",
                              (meme["id"],)).fetchone()
    assert row == ("image/png", meme["created_at"], meme["created_at"])
    assert spooled(server) == []


def test_jpeg_is_stored_as_jpg_and_served_as_image_jpeg(server):
    image = jpeg(7)
    meme = create(server, image=image, filename="photo.PNG")  # the name is not trusted
    assert key_of(meme["image_url"]).endswith(".jpg")
    got = requests.get(meme["image_url"], timeout=10)
    assert (got.content, got.headers["Content-Type"]) == (image, "image/jpeg")
    head = requests.head(meme["image_url"], timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(image))


def test_seed_field_names_are_accepted(server):
    image = png(2)
    meme = create(server, image=image, names=("meme_image", "meme_title", "meme_description"),
                  title="Seed names", description="meme_* fields")
    assert (meme["title"], meme["description"]) == ("Seed names", "meme_* fields")
    assert requests.get(meme["image_url"], timeout=10).content == image


@pytest.mark.parametrize("missing", ["image", "title", "description"])
def test_a_missing_field_is_400(server, missing):
    kw = {"image": png(3), "title": "Fine title", "description": "Fine description"}
    kw[missing] = None
    with unchanged(server):
        error = rejected(server, post(server, **kw), 400, missing)
    assert error["code"] == "bad_request"
    assert error["message"] == "Request validation has failed"
    assert error["fields"][missing] == ["this field is required"]


def test_an_empty_form_lists_every_missing_field(server):
    with unchanged(server):
        error = rejected(server, send_form(server, "POST", "/memes"), 400)
    assert set(error["fields"]) == {"image", "title", "description"}


@pytest.mark.parametrize("field,value", [
    ("title", "ab"), ("title", "x" * 101), ("title", ""),
    ("description", "ab"), ("description", "d" * 1001), ("description", ""),
    ("title", "   "), ("title", " \t\n "), ("description", "     "),
    ("title", "\u3000\u3000\u3000"),  # ideographic spaces are whitespace too
    ("title", "😀" * 101),  # 101 code points, whatever their bytes
    ("title", "ab\x00"),
])
def test_bad_text_is_400_and_stores_nothing(server, field, value):
    kw = {"title": "Fine title", "description": "Fine description", field: value}
    with unchanged(server):
        rejected(server, post(server, image=png(4), **kw), 400, field)


@pytest.mark.parametrize("field,value", [
    ("title", "abc"), ("title", "x" * 100), ("description", "abc"),
    ("description", "d" * 1000), ("title", "ЖЖЖ"), ("title", "😀" * 100),
    ("title", "  a"), ("description", "line one\nline two"),
])
def test_text_at_the_limits_is_accepted_as_given(server, field, value):
    kw = {"title": "Fine title", "description": "Fine description", field: value}
    meme = create(server, seed=5, **kw)
    assert meme[field] == value  # counted in code points, stored unstripped


@pytest.mark.parametrize("content,detected", [
    (GIF, "image/gif"),
    (b"just some text, not an image", "text/plain"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "image/svg+xml"),
    (b"\x00\x01\x02\x03 random bytes", "application/octet-stream"),
])
def test_content_that_is_not_png_or_jpeg_is_400_whatever_its_name(server, content, detected):
    with unchanged(server):
        error = rejected(server, post(server, image=content, filename="innocent.png"), 400,
                         "image")
    assert detected in error["fields"]["image"][0]


def test_an_empty_file_is_400(server):
    with unchanged(server):
        rejected(server, post(server, image=b"", filename="empty.png"), 400, "image")


def test_image_of_exactly_20_mib_is_accepted(server):
    image = png_of_size(IMAGE_LIMIT)
    meme = create(server, image=image)
    got = requests.get(meme["image_url"], timeout=30)
    assert len(got.content) == IMAGE_LIMIT and got.content == image
    assert server.request("DELETE", f"/memes/{meme['id']}").status_code == 204


def test_image_of_20_mib_plus_one_byte_is_413(server):
    with unchanged(server):
        error = rejected(server, post(server, image=png_of_size(IMAGE_LIMIT + 1)), 413)
    assert error["code"] == "payload_too_large"


def test_body_past_the_upload_limit_is_413_before_it_is_read(server):
    limit = IMAGE_LIMIT + MiB  # Decisions §10: 1 MiB of form overhead
    head = (f"POST /memes HTTP/1.1\r\nHost: t\r\nContent-Length: {limit + 1}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\n\r\n").encode()
    with unchanged(server):
        raw = server.raw(head, timeout=5)
    assert raw.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("content_type,body", [
    ("application/json", b'{"title": "abc", "description": "abc"}'),
    ("text/plain", b"title=abc"),
    ("application/x-www-form-urlencoded", b"title=abc&description=abc"),
    (None, b"title=abc"),
])
def test_a_body_that_is_not_multipart_is_415(server, content_type, body):
    headers = {} if content_type is None else {"Content-Type": content_type}
    with unchanged(server):
        error = rejected(server, server.request("POST", "/memes", data=body,
                                                headers=headers), 415)
    assert error["code"] == "unsupported_media_type"


def test_unknown_and_repeated_fields_are_400(server):
    with unchanged(server):
        r = send_form(server, "POST", "/memes", ("image", "a.png", png(6)),
                      ("title", None, b"Fine title"), ("description", None, b"Fine text"),
                      ("id", None, b"5"))
        assert rejected(server, r, 400, "id")["fields"]["id"] == ["unknown field"]
        r = send_form(server, "POST", "/memes", ("image", "a.png", png(6)),
                      ("title", None, b"Fine title"), ("meme_title", None, b"Other title"),
                      ("description", None, b"Fine text"))
        rejected(server, r, 400, "title")
        r = send_form(server, "POST", "/memes", ("image", "a.png", png(6)),
                      ("image", "b.png", png(7)), ("title", None, b"Fine title"),
                      ("description", None, b"Fine text"))
        rejected(server, r, 400, "image")


def test_parts_of_the_wrong_kind_are_400(server):
    with unchanged(server):
        r = send_form(server, "POST", "/memes", ("image", None, b"not a file part"),
                      ("title", None, b"Fine title"), ("description", None, b"Fine text"))
        rejected(server, r, 400, "image")
        r = send_form(server, "POST", "/memes", ("image", "a.png", png(8)),
                      ("title", "title.txt", b"Fine title"), ("description", None, b"Fine text"))
        rejected(server, r, 400, "title")


def test_text_that_is_not_utf8_is_400(server):
    with unchanged(server):
        r = send_form(server, "POST", "/memes", ("image", "a.png", png(9)),
                      ("title", None, b"\xff\xfe bad bytes"), ("description", None, b"Fine"))
        rejected(server, r, 400)


def test_a_truncated_form_is_400(server):
    body, headers = form(("image", "a.png", png(10)), ("title", None, b"Fine title"),
                         ("description", None, b"Fine text"))
    cut = body[:-len(b"--memes-test-boundary--\r\n")]
    with unchanged(server):
        rejected(server, server.request("POST", "/memes", data=cut, headers=headers), 400)


def test_a_form_without_boundary_is_400(server):
    with unchanged(server):
        r = server.request("POST", "/memes", data=b"whatever",
                           headers={"Content-Type": "multipart/form-data"})
        rejected(server, r, 400)


def test_a_failed_insert_leaves_no_file_behind(server):
    """§D.2: the file is written first; when the row cannot be, the file is removed."""
    with server.refusing("memes", "INSERT"), unchanged(server):
        r = post(server, image=png(11))
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_server_error"


def test_concurrent_creates_get_one_row_and_one_file_each(server):
    before = set(image_files(server))
    results: list[requests.Response] = []

    def upload(n: int) -> None:
        results.append(post(server, title=f"Concurrent {n}", image=png(1000 + n)))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201] * 12
    memes = [r.json() for r in results]
    assert len({m["id"] for m in memes}) == 12
    assert set(image_files(server)) - before == {key_of(m["image_url"]) for m in memes}


# -- GET /memes and /memes/{id} --------------------------------------------------------------------

def test_empty_list(fresh):
    r = fresh.get("/memes")
    assert r.status_code == 200
    assert r.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert fresh.get("/memes?page=2").status_code == 404


def test_list_is_newest_first_and_paginated(fresh):
    ids = [create(fresh, seed=n, title=f"Meme {n:02d}")["id"] for n in range(23)]
    newest_first = ids[::-1]
    base = f"http://127.0.0.1:{fresh.port}/memes"
    page1 = fresh.get("/memes").json()
    assert page1["count"] == 23
    assert (page1["next"], page1["previous"]) == (base + "?page=2", None)
    assert [m["id"] for m in page1["results"]] == newest_first[:10]
    assert all(set(m) == MEME_KEYS for m in page1["results"])
    page2 = fresh.get("/memes?page=2").json()
    assert (page2["next"], page2["previous"]) == (base + "?page=3", base)
    assert [m["id"] for m in page2["results"]] == newest_first[10:20]
    page3 = fresh.get("/memes?page=3").json()
    assert (page3["next"], page3["previous"]) == (None, base + "?page=2")
    assert [m["id"] for m in page3["results"]] == newest_first[20:]
    assert fresh.get("/memes?page=last").json() == page3
    for bad in ("4", "0", "-1", "abc"):
        r = fresh.get(f"/memes?page={bad}")
        assert r.status_code == 404 and r.json()["error"]["message"] == "Invalid page."
    sized = fresh.get("/memes?page_size=5&page=2").json()
    assert [m["id"] for m in sized["results"]] == newest_first[5:10]
    assert sized["next"] == base + "?page=3&page_size=5"
    assert sized["previous"] == base + "?page_size=5"
    assert len(fresh.get("/memes?page_size=1000").json()["results"]) == 23  # clamped to 100
    assert len(fresh.get("/memes?page_size=abc").json()["results"]) == 10  # the default
    slashed = fresh.get("/memes/").json()  # the other slash form, same route
    assert (slashed["count"], slashed["results"]) == (23, page1["results"])


def test_equal_created_at_is_ordered_by_id_descending(fresh):
    """Memes created in the same microsecond: ties go to the higher id."""
    ids = [create(fresh, seed=n)["id"] for n in range(3)]
    conn = fresh.db()
    conn.execute("UPDATE memes SET created_at = '2024-03-05T12:34:56.789012Z'")
    conn.commit()
    conn.close()
    assert [m["id"] for m in fresh.get("/memes").json()["results"]] == ids[::-1]
    later = create(fresh, seed=9)
    assert [m["id"] for m in fresh.get("/memes").json()["results"]] == [later["id"], *ids[::-1]]


def test_read_one(server):
    meme = create(server, seed=12, title="Read me", description="Once")
    r = server.get(f"/memes/{meme['id']}")
    assert r.status_code == 200 and r.json() == meme
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert server.get(f"/memes/{meme['id']}/").json() == meme
    assert server.get(f"/memes/000{meme['id']}").json() == meme  # leading zeros are decimal
    head = server.request("HEAD", f"/memes/{meme['id']}")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("path", ["/memes/999999", "/memes/abc", "/memes/-1", "/memes/1.0",
                                  "/memes/99999999999999999999", "/memes/9223372036854775808"])
def test_unknown_or_malformed_ids_are_404(server, path):
    r = server.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


# -- PUT /memes/{id} ---------------------------------------------------------------------------

def test_put_replaces_the_text_and_keeps_image_and_created_at(server):
    meme = create(server, seed=13)
    r = server.request("PUT", f"/memes/{meme['id']}", json={"title": "New title",
                                                             "description": "New text"})
    assert r.status_code == 200, r.text
    assert r.json() == {**meme, "title": "New title", "description": "New text"}
    assert server.get(f"/memes/{meme['id']}").json() == r.json()
    updated_at = server.db().execute("SELECT updated_at FROM memes WHERE id = ?",
                                     (meme["id"],)).fetchone()[0]
    assert updated_at > meme["created_at"]


def test_put_without_content_type_is_taken_as_json(server):
    meme = create(server, seed=14)
    r = server.request("PUT", f"/memes/{meme['id']}",
                       data=b'{"title": "No type", "description": "Still JSON"}')
    assert r.status_code == 200 and r.json()["title"] == "No type"


@pytest.mark.parametrize("body,field", [
    ({"title": "Only title"}, "description"),
    ({"description": "Only description"}, "title"),
    ({"title": "Fine", "description": "Fine", "id": 1}, "id"),
    ({"title": "Fine", "description": "Fine", "image_url": "http://x/y.png"}, "image_url"),
    ({"title": "Fine", "description": "Fine", "created_at": "2024-01-01T00:00:00Z"},
     "created_at"),
    ({"title": "Fine", "description": "Fine", "extra": True}, "extra"),
    ({"title": None, "description": "Fine"}, "title"),
    ({"title": 123, "description": "Fine"}, "title"),
    ({"title": ["abc"], "description": "Fine"}, "title"),
    ({"title": "ab", "description": "Fine"}, "title"),
    ({"title": "Fine", "description": "   "}, "description"),
    ({"title": "Fine", "description": "x" * 1001}, "description"),
])
def test_put_validation(server, body, field):
    meme = create(server, seed=15)
    with unchanged(server):
        rejected(server, server.request("PUT", f"/memes/{meme['id']}", json=body), 400, field)


@pytest.mark.parametrize("data", [b"", b"[]", b'"text"', b"{bad json",
                                  b'{"title": "a", "title": "b", "description": "abc"}',
                                  b'{"title": NaN, "description": "abc"}'])
def test_put_with_a_malformed_body_is_400(server, data):
    meme = create(server, seed=16)
    with unchanged(server):
        rejected(server, server.request("PUT", f"/memes/{meme['id']}", data=data,
                                        headers=JSON), 400)


def test_put_unknown_id_is_404_but_validation_comes_first(server):
    with unchanged(server):
        r = server.request("PUT", "/memes/999999", json={"title": "Fine", "description": "Fine"})
        rejected(server, r, 404)
        rejected(server, server.request("PUT", "/memes/999999", json={"title": "Fine"}), 400)


def test_put_with_a_form_is_415(server):
    meme = create(server, seed=17)
    with unchanged(server):
        r = send_form(server, "PUT", f"/memes/{meme['id']}", ("title", None, b"Fine"),
                      ("description", None, b"Fine"))
        rejected(server, r, 415)


# -- PATCH /memes/{id} ---------------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"title": "Patched title"},
                                    {"description": "Patched description"},
                                    {"title": "Both", "description": "Patched"}])
def test_patch_json_changes_only_the_given_text(server, change):
    meme = create(server, seed=18)
    r = server.request("PATCH", f"/memes/{meme['id']}", json=change)
    assert r.status_code == 200, r.text
    assert r.json() == {**meme, **change}


@pytest.mark.parametrize("body,field", [({}, "body"), ({"image_url": "x"}, "image_url"),
                                        ({"title": "no"}, "title"), ({"image": "x"}, "image"),
                                        ({"description": False}, "description")])
def test_patch_json_validation(server, body, field):
    meme = create(server, seed=19)
    with unchanged(server):
        rejected(server, server.request("PATCH", f"/memes/{meme['id']}", json=body), 400, field)


def test_patch_of_an_unknown_meme_is_404(server):
    with unchanged(server):
        rejected(server, server.request("PATCH", "/memes/999999", json={"title": "Fine"}), 404)
        rejected(server, send_form(server, "PATCH", "/memes/999999",
                                   ("image", "a.png", png(20))), 404)


def test_patch_with_another_body_type_is_415(server):
    meme = create(server, seed=21)
    with unchanged(server):
        r = server.request("PATCH", f"/memes/{meme['id']}", data=b"title=x",
                           headers={"Content-Type": "text/plain"})
        rejected(server, r, 415)


@pytest.mark.parametrize("path", ["/memes/{id}", "/memes/{id}/image", "/memes/{id}/update_image"])
def test_image_replace_serves_the_new_bytes_and_forgets_the_old(server, path):
    meme = create(server, seed=22)
    old_url = meme["image_url"]
    new_image = jpeg(22)
    r = send_form(server, "PATCH", path.format(id=meme["id"]), ("image", "new.jpg", new_image))
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["image_url"] != old_url and replaced["image_url"].endswith(".jpg")
    assert {k: v for k, v in replaced.items() if k != "image_url"} == \
        {k: v for k, v in meme.items() if k != "image_url"}  # created_at is kept
    got = requests.get(replaced["image_url"], timeout=10)
    assert (got.status_code, got.content, got.headers["Content-Type"]) == \
        (200, new_image, "image/jpeg")
    assert requests.get(old_url, timeout=10).status_code == 404
    assert key_of(old_url) not in image_files(server)
    assert key_of(replaced["image_url"]) in image_files(server)
    assert server.get(f"/memes/{meme['id']}").json() == replaced
    assert spooled(server) == []


def test_image_replace_may_change_the_text_too(server):
    meme = create(server, seed=23)
    r = send_form(server, "PATCH", f"/memes/{meme['id']}", ("meme_image", "n.png", png(230)),
                  ("title", None, "Новый".encode()))
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Новый" and r.json()["description"] == meme["description"]


@pytest.mark.parametrize("parts,field", [
    ((("image", "gif.png", GIF),), "image"),
    ((("image", "t.png", b"plain text"),), "image"),
    ((("title", None, b"Only a title"),), "image"),
    ((("image", "a.png", png(24)), ("title", None, b"ab")), "title"),
    ((("image", "a.png", png(24)), ("other", None, b"x")), "other"),
])
def test_image_replace_validation_keeps_the_old_image(server, parts, field):
    meme = create(server, seed=24)
    for path in (f"/memes/{meme['id']}", f"/memes/{meme['id']}/image"):
        with unchanged(server):
            rejected(server, send_form(server, "PATCH", path, *parts), 400, field)
    assert requests.get(meme["image_url"], timeout=10).content == png(24)


def test_image_replace_past_the_limit_is_413(server):
    meme = create(server, seed=25)
    body, headers = form(("image", "big.png", png_of_size(IMAGE_LIMIT + 1)))
    with unchanged(server):
        r = server.request("PATCH", f"/memes/{meme['id']}/image", data=body, headers=headers)
        rejected(server, r, 413)
    assert requests.get(meme["image_url"], timeout=10).status_code == 200


def test_image_routes_refuse_json(server):
    meme = create(server, seed=26)
    for path in ("image", "update_image"):
        with unchanged(server):
            r = server.request("PATCH", f"/memes/{meme['id']}/{path}", json={"title": "abc"})
            rejected(server, r, 415)


def test_a_failed_replace_keeps_the_old_image_and_leaves_no_new_file(server):
    meme = create(server, seed=27)
    with server.refusing("memes", "UPDATE"), unchanged(server):
        r = send_form(server, "PATCH", f"/memes/{meme['id']}/image",
                      ("image", "n.png", png(270)))
    assert r.status_code == 500
    assert requests.get(meme["image_url"], timeout=10).content == png(27)


# -- DELETE /memes/{id} --------------------------------------------------------------------------

def test_delete_removes_the_row_and_the_image(server):
    meme = create(server, seed=28)
    r = server.request("DELETE", f"/memes/{meme['id']}")
    assert r.status_code == 204 and r.content == b""
    assert server.get(f"/memes/{meme['id']}").status_code == 404
    assert requests.get(meme["image_url"], timeout=10).status_code == 404
    assert key_of(meme["image_url"]) not in image_files(server)
    with unchanged(server):
        rejected(server, server.request("DELETE", f"/memes/{meme['id']}"), 404)
    # ids are never reused (AUTOINCREMENT)
    assert create(server, seed=29)["id"] > meme["id"]


def test_delete_of_an_unknown_meme_is_404(server):
    with unchanged(server):
        rejected(server, server.request("DELETE", "/memes/999999"), 404)
        assert server.request("DELETE", "/memes/abc").status_code == 404


# -- methods, media, documentation --------------------------------------------------------------

@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/memes/1", {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}),
    ("PUT", "/memes", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("DELETE", "/memes", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("GET", "/memes/1/image", {"OPTIONS", "PATCH"}),
    ("POST", "/media/memes/x.png", {"GET", "HEAD", "OPTIONS"}),
])
def test_wrong_method_is_405_with_allow(server, method, path, allowed):
    with unchanged(server):
        r = server.request(method, path)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed


def test_media_paths_that_are_not_images_are_404(server):
    for path in ("/media/memes/missing.png", "/media/memes/../test.sqlite3",
                 "/media/memes/%2e%2e/config.json"):
        assert server.get(path).status_code == 404, path


def test_openapi_lists_every_memes_route_with_its_bodies(server):
    r = server.get("/openapi.json")
    if r.status_code == 404:
        pytest.skip("/openapi.json is not served by this build")
    paths = r.json()["paths"]
    assert set(paths["/memes"]) == {"get", "post"}
    assert set(paths["/memes/{meme_id}"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/memes/{meme_id}/image"]) == {"patch"}
    assert set(paths["/memes/{meme_id}/update_image"]) == {"patch"}
    post_body = paths["/memes"]["post"]["requestBody"]["content"]
    form_schema = post_body["multipart/form-data"]["schema"]
    assert form_schema["required"] == ["image", "title", "description"]
    assert form_schema["properties"]["image"]["format"] == "binary"
    assert "201" in paths["/memes"]["post"]["responses"]
    assert "application/json" in paths["/memes/{meme_id}"]["put"]["requestBody"]["content"]
    patch_body = paths["/memes/{meme_id}"]["patch"]["requestBody"]["content"]
    assert set(patch_body) == {"multipart/form-data", "application/json"}
    assert "204" in paths["/memes/{meme_id}"]["delete"]["responses"]
    listed = paths["/memes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(listed["required"]) == {"count", "next", "previous", "results"}
    assert server.get("/docs").status_code == 200


# -- start-up sweep ------------------------------------------------------------------------------

def test_start_up_sweep_removes_orphans_and_keeps_referenced_images(tmp_path):
    server = ServerProcess(tmp_path, ["memes"]).start()
    try:
        kept = create(server, seed=30)
    finally:
        server.stop()
    memes_dir = server.media_root / "memes"
    (memes_dir / "0123456789abcdef0123456789abcdef.png").write_bytes(png(31))
    (memes_dir / "stray.txt").write_bytes(b"left by a crash")
    server.start()
    try:
        assert image_files(server) == [key_of(kept["image_url"])]
        assert requests.get(kept["image_url"], timeout=10).content == png(30)
        assert server.get(f"/memes/{kept['id']}").json()["image_url"] == kept["image_url"]
    finally:
        server.stop()

