"""JSON Schemas and worked examples of the memes collection, for /openapi.json."""
from __future__ import annotations

from typing import Any

from apps.memes.validation import TEXT_LIMITS


def text_schema(field: str) -> dict[str, Any]:
    fewest, most = TEXT_LIMITS[field]
    return {"type": "string", "minLength": fewest, "maxLength": most,
            "description": "not whitespace only; lengths count code points"}


MEME = {"type": "object", "required": ["id", "title", "description", "created_at", "image_url"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "title": text_schema("title"),
            "description": text_schema("description"),
            "created_at": {"type": "string", "format": "date-time",
                           "example": "2024-03-05T12:34:56.789012Z"},
            "image_url": {"type": "string", "format": "uri",
                          "example": "http://localhost:8080/media/memes/<uuid>.png"}}}
IMAGE = {"type": "string", "format": "binary",
         "description": "PNG or JPEG (detected from the content), at most 20 MiB by default"}
TEXT = {"title": text_schema("title"), "description": text_schema("description")}
OTHER_NAMES = "The names meme_image, meme_title and meme_description are accepted too."
NEW_MEME_FORM = {"type": "object", "required": ["image", "title", "description"],
                 "properties": {"image": IMAGE, **TEXT}, "description": OTHER_NAMES}
IMAGE_FORM = {"type": "object", "required": ["image"], "properties": {"image": IMAGE, **TEXT},
              "description": "A new image; title and description may change with it. "
                             + OTHER_NAMES}
PUT_BODY = {"type": "object", "required": ["title", "description"], "properties": TEXT,
            "additionalProperties": False}
PATCH_BODY = {"type": "object", "minProperties": 1, "properties": TEXT,
              "additionalProperties": False}
PATCH_BODIES = {"multipart": IMAGE_FORM, "json": PATCH_BODY}
MEME_EXAMPLE = {"id": 1, "title": "Logo", "description": "Our logo",
                "created_at": "2024-03-05T12:34:56.789012Z",
                "image_url": "http://localhost:8080/media/memes/"
                             "9f1c3e0c5a7b4d2e8f6a1b3c5d7e9f01.png"}
ONE = {"meme_id": 1}
# a file part's example is its text: a form tried as is gets the 400 for a non-image
FORM_EXAMPLE = {"image": "(a PNG or JPEG file)", "title": "Logo", "description": "Our logo"}
RULES = ("Beyond the schema: the image must be a PNG or a JPEG by its content (the file name "
         "and the part's Content-Type are not trusted), and a text may not be only "
         "whitespace.")
