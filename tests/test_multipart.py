"""framework/web/multipart.py with raw byte strings: framing, boundaries split across reads,
parameters (quoted, RFC 5987, backslashes), limits, and cleanup of temp files."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from framework.web.multipart import Form, MultipartError, parse_form, parse_header

B = "XyZ-boundary-42"
CT = f"multipart/form-data; boundary={B}"


class Pieces(io.RawIOBase):
    """A stream that hands out the body in the given pieces, however much is asked for
    (as a socket or a pipe may), and only then the rest in ``read``-sized chunks."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = [p for p in pieces if p]

    def read(self, size: int = -1) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces[0]
        if size < 0 or size >= len(piece):
            return self.pieces.pop(0)
        self.pieces[0] = piece[size:]
        return piece[:size]


def body(*parts: bytes, boundary: str = B, close: bool = True) -> bytes:
    """``parts`` are header block + CRLF CRLF + content, joined as RFC 2046 says."""
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + boundary.encode() + b"--\r\n" if close else b"")


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file(name: str, filename: str, content: bytes, ctype: str = "application/octet-stream",
         raw_disposition: str | None = None) -> bytes:
    disposition = raw_disposition or f'form-data; name="{name}"; filename="{filename}"'
    return (f"Content-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n".encode()
            + content)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path


def parse(data: bytes | io.RawIOBase, spool: Path, content_type: str = CT, **kw) -> Form:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return parse_form(stream, content_type, str(spool), **kw)


def contents(form: Form) -> dict:
    """Everything a form holds, file bytes read from disk, for comparing two parses."""
    files = {name: [(p.filename, p.content_type, Path(p.path).read_bytes(), p.size, p.head)
                    for p in parts] for name, parts in form.files.items()}
    return {"fields": form.fields, "files": files}


def leftovers(spool: Path) -> list[str]:
    return sorted(os.listdir(spool))


# -- the basics ----------------------------------------------------------------------------------

def test_field_and_file(spool):
    data = body(field("title", "привет".encode()), file("file", "a.txt", b"hello", "text/plain"))
    with parse(data, spool) as form:
        assert form.fields == {"title": ["привет"]}
        assert form.field("title") == "привет"
        part = form.file("file")
        assert (part.name, part.filename, part.content_type) == ("file", "a.txt", "text/plain")
        assert Path(part.path).read_bytes() == b"hello"
        assert part.size == 5 and part.head == b"hello"
        assert Path(part.path).parent == spool
    assert leftovers(spool) == []  # leaving the block removes the temp file


def test_head_keeps_the_first_2048_bytes_only(spool):
    content = bytes(range(256)) * 40
    with parse(body(file("f", "x.bin", content)), spool, chunk_size=100) as form:
        part = form.file("f")
        assert part.head == content[:2048] and part.size == len(content)
        assert Path(part.path).read_bytes() == content


def test_several_files_of_one_name_keep_their_order(spool):
    data = body(file("file", "1.txt", b"one"), field("x", b"1"), file("file", "2.txt", b"two"),
                field("x", b"2"))
    with parse(data, spool) as form:
        assert [p.filename for p in form.files["file"]] == ["1.txt", "2.txt"]
        assert form.file("file").filename == "1.txt"
        assert form.fields["x"] == ["1", "2"] and form.field("x") == "2"


def test_empty_field_and_empty_file(spool):
    with parse(body(field("a", b""), file("f", "", b"")), spool) as form:
        assert form.fields == {"a": [""]}
        part = form.file("f")
        assert part.filename == "" and part.size == 0 and Path(part.path).read_bytes() == b""


def test_form_without_parts(spool):
    with parse(f"--{B}--\r\n".encode(), spool) as form:
        assert form.fields == {} and form.files == {}


def test_preamble_epilogue_and_transport_padding(spool):
    data = (b"This is the preamble.\r\n--" + B.encode() + b" \t\r\n"
            + field("a", b"1") + b"\r\n--" + B.encode() + b"--  \r\nthe epilogue --" + B.encode())
    with parse(data, spool) as form:
        assert form.fields == {"a": ["1"]}


def test_part_headers_are_case_insensitive_and_may_be_folded(spool):
    data = body(b'content-disposition: form-data;\r\n name="a"\r\n'
                b"CONTENT-TYPE: text/plain\r\n\r\nv")
    with parse(data, spool) as form:
        assert form.fields == {"a": ["v"]}


def test_field_charset_from_the_part_content_type(spool):
    data = body(b'Content-Disposition: form-data; name="a"\r\n'
                b'Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9')
    with parse(data, spool) as form:
        assert form.field("a") == "café"


# -- boundaries ----------------------------------------------------------------------------------

TRICKY = (b"\r\n"                            # CRLF at the very start
          b"line one\r\nline two\r\n\r\n"    # CRLFs inside
          b"x--" + B.encode() + b"\r\n"      # the boundary without the CRLF before it
          b"\r\n--" + B.encode() + b"X\r\n"  # a longer boundary-like line
          b"\r\n--" + B.encode() + b"-x"     # the boundary followed by one dash
          b"\r\n--" + B[:-1].encode() +      # a prefix of the delimiter
          b"\r\n-\r\n--\r")                  # ends with a CR, right before the real delimiter


def tricky_body() -> bytes:
    return body(field("before", b"a\r\nb"), file("file", "t.bin", TRICKY), field("after", b"z"))


def test_boundary_like_content_is_content(spool):
    with parse(tricky_body(), spool) as form:
        assert Path(form.file("file").path).read_bytes() == TRICKY
        assert form.fields == {"before": ["a\r\nb"], "after": ["z"]}


PADDED = (b"preamble\r\n--" + B.encode() + b" \t\r\n" + field("a", b"1")
          + b"\r\n--" + B.encode() + b"  \r\n" + file("f", "p.bin", b"\r\n--" + B.encode() + b" x")
          + b"\r\n--" + B.encode() + b"--")


@pytest.mark.parametrize("data", [tricky_body(), PADDED], ids=["tricky", "padded"])
def test_split_at_every_offset_gives_the_same_form(spool, data):
    with parse(data, spool) as form:
        expected = contents(form)
    for offset in range(1, len(data)):
        with parse(Pieces(data[:offset], data[offset:]), spool) as form:
            assert contents(form) == expected, f"split at {offset}"
    assert leftovers(spool) == []


@pytest.mark.parametrize("data", [tricky_body(), PADDED], ids=["tricky", "padded"])
def test_reads_shorter_than_the_delimiter(spool, data):
    """Small reads put one delimiter across three and more of them."""
    with parse(data, spool) as form:
        expected = contents(form)
    for chunk_size in (1, 2, 3, 7, len(B) + 3, len(B) + 4, len(B) + 5, 64):
        with parse(data, spool, chunk_size=chunk_size) as form:
            assert contents(form) == expected, f"chunk size {chunk_size}"


def test_padded_delimiters(spool):
    with parse(PADDED, spool) as form:
        assert form.fields == {"a": ["1"]}
        assert Path(form.file("f").path).read_bytes() == b"\r\n--" + B.encode() + b" x"


def test_quoted_and_case_insensitive_boundary_parameter(spool):
    boundary = "a b:c(d)?=e"  # legal bchars, some only allowed inside quotes
    data = body(field("a", b"1"), boundary=boundary)
    with parse(data, spool, f'Multipart/Form-Data; BOUNDARY="{boundary}"; charset=utf-8') as form:
        assert form.fields == {"a": ["1"]}


def test_first_boundary_may_follow_a_crlf(spool):
    with parse(b"\r\n" + body(field("a", b"1")), spool) as form:
        assert form.fields == {"a": ["1"]}


# -- file names and parameters -------------------------------------------------------------------

@pytest.mark.parametrize("disposition, expected", [
    ('form-data; name="f"; filename="plain.txt"', "plain.txt"),
    ("form-data; name=f; filename=token.txt", "token.txt"),
    ('form-data; name="f"; filename="semi;colon=.txt"', "semi;colon=.txt"),
    # RFC 5987 / 8187, and it wins over filename wherever it stands
    ("form-data; name=\"f\"; filename*=UTF-8''%D1%84%D0%B0%D0%B9%D0%BB.txt", "файл.txt"),
    ("form-data; name=\"f\"; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC.txt", "€.txt"),
    ("form-data; name=\"f\"; filename*=utf-8'en'%E2%82%AC.txt; filename=\"fallback.txt\"", "€.txt"),
    ("form-data; name=\"f\"; filename*=iso-8859-1''caf%E9.txt", "café.txt"),
    # an undecodable extended value is ignored, the plain one is used
    ("form-data; name=\"f\"; filename=\"fallback.txt\"; filename*=koi8-r''%C1.txt", "fallback.txt"),
    ("form-data; name=\"f\"; filename=\"fallback.txt\"; filename*=UTF-8''%ZZ.txt", "fallback.txt"),
    # Decisions §9: only \\ and \" are escapes inside quotes; other backslashes stay
    ('form-data; name="f"; filename="C:\\x\\y.txt"', "C:\\x\\y.txt"),
    ('form-data; name="f"; filename="a\\"b.txt"', 'a"b.txt'),
    ('form-data; name="f"; filename="a\\\\b.txt"', "a\\b.txt"),
    ('form-data; name="f"; filename="../../etc/passwd"', "../../etc/passwd"),
    ('form-data; name="f"; filename="unterminated.txt', "unterminated.txt"),
])
def test_filename_parameter(spool, disposition, expected):
    with parse(body(file("f", "", b"x", raw_disposition=disposition)), spool) as form:
        assert form.file("f").filename == expected


def test_raw_utf8_and_latin1_file_names(spool):
    utf8 = body(b'Content-Disposition: form-data; name="f"; filename="\xd0\xb6.txt"\r\n\r\nx')
    with parse(utf8, spool) as form:
        assert form.file("f").filename == "ж.txt"
    latin1 = body(b'Content-Disposition: form-data; name="f"; filename="\xe9.txt"\r\n\r\nx')
    with parse(latin1, spool) as form:
        assert form.file("f").filename == "é.txt"


def test_parse_header():
    assert parse_header('Form-Data; NAME="a"; x = "y z" ;; flag') == (
        "form-data", {"name": "a", "x": "y z", "flag": ""})
    assert parse_header("") == ("", {})


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"",  # empty body
    b"no boundary anywhere in this body",
    f"--{B}".encode(),  # the first delimiter, then nothing
    f"--{B}\r\nContent-Disposition: form-data; name=\"a\"".encode(),  # cut in the headers
    f"--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue".encode(),  # no close
    body(file("f", "a.bin", b"x" * 1000), close=False),  # a file part, no closing boundary
    body(file("f", "a.bin", b"x" * 1000)).rstrip(b"\r\n-"),  # close delimiter cut short
], ids=["empty", "no-boundary", "delimiter-only", "cut-in-headers", "cut-in-field",
        "no-close", "close-cut"])
def test_truncated_body_is_400_and_leaves_no_temp_files(spool, data):
    with pytest.raises(MultipartError) as info:
        parse(data, spool)
    assert info.value.status == 400
    assert leftovers(spool) == []


@pytest.mark.parametrize("content_type, status", [
    ("multipart/form-data", 400),
    ("multipart/form-data; boundary=", 400),
    ('multipart/form-data; boundary=""', 400),
    ("multipart/form-data; boundary=" + "x" * 71, 400),
    ("multipart/form-data; boundary=bad\x01char", 400),
    ("application/json", 415),
    ("multipart/mixed; boundary=x", 415),
])
def test_bad_content_type(spool, content_type, status):
    with pytest.raises(MultipartError) as info:
        parse(body(field("a", b"1")), spool, content_type)
    assert info.value.status == status


def test_longest_boundary_is_fine(spool):
    boundary = "b" * 70
    with parse(body(field("a", b"1"), boundary=boundary), spool,
               f"multipart/form-data; boundary={boundary}") as form:
        assert form.fields == {"a": ["1"]}


@pytest.mark.parametrize("part", [
    b"\r\nno headers at all",
    b"Content-Type: text/plain\r\n\r\nno disposition",
    b"Content-Disposition: attachment; name=\"a\"\r\n\r\nnot form-data",
    b"Content-Disposition: form-data; filename=\"a.txt\"\r\n\r\nno name",
    b"Content-Disposition form-data\r\n\r\nno colon",
    b" Content-Disposition: form-data; name=\"a\"\r\n\r\nleading blank",
])
def test_malformed_part_headers(spool, part):
    with pytest.raises(MultipartError) as info:
        parse(body(part), spool)
    assert info.value.status == 400


def test_part_header_section_too_large(spool):
    data = body(b"X-Filler: " + b"a" * 20000 + b"\r\n" + field("a", b"1"))
    with pytest.raises(MultipartError) as info:
        parse(data, spool)
    assert info.value.status == 400


def test_file_part_limit(spool):
    with parse(body(file("f", "a", b"x" * 1000)), spool, max_file_size=1000) as form:
        assert form.file("f").size == 1000
    with pytest.raises(MultipartError) as info:
        parse(body(field("a", b"1"), file("f", "a", b"x" * 1001)), spool, max_file_size=1000,
              chunk_size=100)
    assert info.value.status == 413
    assert leftovers(spool) == []


def test_field_limit(spool):
    with parse(body(field("a", b"x" * 100)), spool, max_field_size=100) as form:
        assert form.field("a") == "x" * 100
    with pytest.raises(MultipartError) as info:
        parse(body(field("a", b"x" * 101)), spool, max_field_size=100)
    assert info.value.status == 413


def test_too_many_parts(spool):
    with parse(body(*[field("a", b"1")] * 3), spool, max_parts=3) as form:
        assert len(form.fields["a"]) == 3
    with pytest.raises(MultipartError) as info:
        parse(body(*[file("a", "x", b"1")] * 4), spool, max_parts=3)
    assert info.value.status == 400
    assert leftovers(spool) == []


def test_field_not_in_its_charset(spool):
    with pytest.raises(MultipartError) as info:
        parse(body(field("a", b"\xff\xfe")), spool)
    assert info.value.status == 400


def test_big_file_is_streamed_to_disk(spool):
    """5 MiB through 64 KiB reads: the content arrives intact, the head is kept in memory."""
    content = os.urandom(5 * 1024 * 1024)
    with parse(body(field("a", b"1"), file("f", "big.bin", content)), spool) as form:
        part = form.file("f")
        assert part.size == len(content) and part.head == content[:2048]
        assert Path(part.path).read_bytes() == content
