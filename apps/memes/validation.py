"""Validation of meme bodies: the JSON text of PUT and PATCH, and the multipart
form (image, title, description) of POST and of an image replacement.

Every problem is collected per field and raised together as one 400 before any file is kept
or any transaction is opened, so a rejected request changes nothing.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from framework.web.multipart import FilePart, Form
from framework.web.sniff import sniff
from framework.web.validate import (
    BODY,
    REQUIRED,
    UNKNOWN,
    FieldError,
    FieldErrors,
    at_least_one,
    check_keys,
    check_text,
    json_object,
    validation_error,
)

# field -> (fewest, most) code points, mirrored by the table's CHECKs
TEXT_LIMITS = {"title": (3, 100), "description": (3, 1000)}
TEXT_FIELDS = frozenset(TEXT_LIMITS)
READ_ONLY = frozenset({"id", "created_at", "image_url"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
# form field name -> what it is; the meme_* names of the original API are accepted too
FORM_NAMES = {"image": "image", "title": "title", "description": "description",
              "meme_image": "image", "meme_title": "title", "meme_description": "description"}
MiB = 1024 * 1024
FORM_OVERHEAD = 1 * MiB  # what a form may add to its image; also the cap of a text field


class Upload(NamedTuple):
    """An accepted image part and its sniffed type."""
    part: FilePart
    mime: str


def checked_text(field: str, value: Any) -> str:
    """A title or description as given (not stripped), or FieldError.

    Lengths count code points (NUL is refused by check_text).
    """
    fewest, most = TEXT_LIMITS[field]
    return check_text(value, most, fewest)


def check_texts(values: dict[str, Any], errors: FieldErrors) -> dict[str, str]:
    """The checked title and/or description among ``values``; problems go to ``errors``."""
    checked = {}
    for field, value in values.items():
        try:
            checked[field] = checked_text(field, value)
        except FieldError as exc:
            errors[field] = [str(exc)]
    return checked


def validate_text_body(body: Any, partial: bool) -> dict[str, str]:
    """The text of a JSON body: both fields for PUT, at least one for a PATCH; else a 400."""
    body = json_object(body)
    errors = FieldErrors()
    check_keys(body, TEXT_FIELDS, frozenset() if partial else TEXT_FIELDS, errors,
               read_only=READ_ONLY)
    values = check_texts({k: v for k, v in body.items() if k in TEXT_FIELDS}, errors)
    if partial and not body:
        errors[BODY] = [at_least_one(TEXT_FIELDS)]
    if errors:
        raise validation_error(errors)
    return values


def validate_form(form: Form, new: bool) -> tuple[dict[str, str], Upload]:
    """The text and the image of a multipart form, or a 400 naming every problem.

    A new meme needs all three fields; a replacement needs the image and may change the text
    with it. Each field is sent once, under either of its names; problems are reported
    under our name (``fields.image``), unknown fields under their own.
    """
    errors = FieldErrors()
    given: dict[str, Any] = {}  # field -> the text, or the FilePart of the image
    sent = [*((name, value) for name, values in form.fields.items() for value in values),
            *((name, part) for name, parts in form.files.items() for part in parts)]
    for name, value in sent:
        field = FORM_NAMES.get(name)
        if field is None:
            errors[name] = [UNKNOWN]
        elif isinstance(value, FilePart) != (field == "image"):
            errors[field] = ["must be a file (a part with a filename)" if field == "image"
                             else "must be a text field, not a file"]
        elif field in given:
            errors[field] = ["sent more than once"]
        else:
            given[field] = value
    required = {"image", *TEXT_FIELDS} if new else {"image"}
    for field in sorted(required - given.keys() - errors.keys()):
        errors[field] = [REQUIRED]
    image = given.pop("image", None)
    texts = check_texts({f: v for f, v in given.items() if f not in errors}, errors)
    upload = None
    if image is not None and "image" not in errors:
        try:
            upload = check_image(image)
        except FieldError as exc:
            errors["image"] = [str(exc)]
    if errors:
        raise validation_error(errors)
    return texts, upload


def check_image(part: FilePart) -> Upload:
    """A PNG or JPEG by its first bytes; the client's type and file name are not trusted."""
    if part.size == 0:
        raise FieldError("the file is empty" if part.filename else "no file was submitted")
    mime = sniff(part.head).mime
    if mime not in IMAGE_TYPES:
        raise FieldError(f"must be a PNG or JPEG image; the content is {mime}")
    return Upload(part, mime)
