"""Percent-encoding and query strings (RFC 3986 §2.1, WHATWG form encoding), written here."""
from __future__ import annotations

HEX = "0123456789ABCDEFabcdef"
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 unreserved characters plus the sub-delims and ':' '@' that may stand in a path
PATH_SAFE = UNRESERVED | frozenset(b"!$&'()*+,;=:@/")
QUERY_SAFE = UNRESERVED | frozenset(b"!$'()*,;:@/?")


def percent_decode(text: str, plus_is_space: bool = False) -> bytes:
    """Decode %XX escapes to bytes; a '%' not followed by two hex digits raises ValueError."""
    raw = text.encode("utf-8")
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        return raw
    pieces = raw.split(b"%")
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        code = piece[:2]
        if len(code) != 2 or chr(code[0]) not in HEX or chr(code[1]) not in HEX:
            raise ValueError(f"bad percent-escape %{code.decode('latin-1')}")
        out.append(int(code, 16))
        out += piece[2:]
    return bytes(out)


def normalize_path(path: str) -> str:
    """Decode the escapes of unreserved characters (RFC 3986 §6.2.2.2: ``/a%62c`` is ``/abc``).

    Escapes of reserved characters (``%2F``...) stay encoded, so segment boundaries are kept;
    a malformed escape is left as it is, for whoever parses the path next to refuse.
    """
    if "%" not in path:
        return path
    pieces = path.split("%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        code = piece[:2]
        if len(code) == 2 and code[0] in HEX and code[1] in HEX and int(code, 16) in UNRESERVED:
            out.append(chr(int(code, 16)) + piece[2:])
        else:
            out.append("%" + piece)
    return "".join(out)


def percent_encode(text: str, safe: frozenset[int] = PATH_SAFE) -> str:
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode("utf-8"))


def parse_query(query: str) -> dict[str, list[str]]:
    """Parse ``a=1&b=x+y&a=2`` into {'a': ['1', '2'], 'b': ['x y']}.

    Keys and values are decoded as UTF-8 with '+' as a space; a bad escape or invalid
    UTF-8 raises ValueError. Empty pieces (``a=1&&b=2``) are skipped; a piece without '='
    is a key with the empty value.
    """
    result: dict[str, list[str]] = {}
    if not query:
        return result
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        name = percent_decode(key, plus_is_space=True).decode("utf-8")
        result.setdefault(name, []).append(
            percent_decode(value, plus_is_space=True).decode("utf-8"))
    return result


def build_query(params: dict[str, list[str]]) -> str:
    return "&".join(f"{percent_encode(k, QUERY_SAFE)}={percent_encode(v, QUERY_SAFE)}"
                    for k, values in params.items() for v in values)
