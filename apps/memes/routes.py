"""HTTP endpoints of the memes collection: thin handlers over validation, the rows (store)
and the image files (images), ordered so that a failure never leaves a row without its
image."""
from __future__ import annotations

from typing import Any

from apps.memes import docs, images, store
from apps.memes.tables import SCHEMA
from apps.memes.validation import FORM_OVERHEAD, validate_form, validate_text_body
from framework.web import media
from framework.web.app import ApiError, ApiRequest, App, Example, created
from framework.web.db import transaction
from framework.web.multipart import Form, read_form
from framework.web.pagination import paginate
from framework.web.responses import Response

app = App("memes", schema=SCHEMA, title="Memes collection")
# GET/HEAD /media/memes/<key>
media.mount(app, images.DIRECTORY, tuple(images.EXTENSIONS),
            Example(params={"name": "9f1c3e0c5a7b4d2e8f6a1b3c5d7e9f01.png"},
                    response="(the PNG file's bytes)", media_type="image/png"))


def upload_limit(settings: dict[str, Any]) -> int:
    """A request carrying an image: the image's limit plus the form around it (1 MiB)."""
    return settings["meme_image_max_bytes"] + FORM_OVERHEAD


def meme(req: ApiRequest, row: tuple) -> dict[str, Any]:
    meme_id, title, description, created_at, image_key = row
    return {"id": meme_id, "title": title, "description": description,
            "created_at": created_at, "image_url": req.url(images.url_path(image_key))}


def not_found(meme_id: int) -> ApiError:
    return ApiError(404, f"meme {meme_id} not found")


@app.get("/memes", paginated=True, response_schema=docs.MEME, example=Example(
    params={"page": "1"}, response={"count": 1, "next": None, "previous": None,
                                  "results": [docs.MEME_EXAMPLE]}))
def list_memes(req: ApiRequest) -> dict[str, Any]:
    """Memes, newest first (created_at, then id, descending), a page at a time."""
    conn = req.db
    with transaction(conn, immediate=False):
        return paginate(req, store.count(conn), lambda limit, offset: [
            meme(req, row) for row in store.newest(conn, limit, offset)])


@app.get("/memes/<int:meme_id>", response_schema=docs.MEME,
         example=Example(params=docs.ONE, response=docs.MEME_EXAMPLE))
def read_meme(req: ApiRequest, meme_id: int) -> dict[str, Any]:
    """One meme."""
    row = store.get(req.db, meme_id)
    if row is None:
        raise not_found(meme_id)
    return meme(req, row)


@app.post("/memes", status=201, body="multipart", max_body=upload_limit,
          request_schema=docs.NEW_MEME_FORM, response_schema=docs.MEME, description=docs.RULES,
          example=Example(body=docs.FORM_EXAMPLE, response=docs.MEME_EXAMPLE))
def create_meme(req: ApiRequest) -> Response:
    """Add a meme: an image (PNG or JPEG) with a title and a description."""
    with read_image_form(req) as form:
        texts, upload = validate_form(form, new=True)
        row = images.put(req.settings, upload.part, upload.mime, lambda key: store.insert(
            req.db, texts["title"], texts["description"], key, upload.mime))
    return created(meme(req, row), f"/memes/{row[0]}")


@app.put("/memes/<int:meme_id>", request_schema=docs.PUT_BODY, response_schema=docs.MEME,
         example=Example(params=docs.ONE, body={"title": "Logo", "description": "Our new logo"},
                         response={**docs.MEME_EXAMPLE, "description": "Our new logo"}))
def replace_text(req: ApiRequest, meme_id: int) -> dict[str, Any]:
    """Replace the title and the description; the image and created_at stay."""
    return update_text(req, meme_id, validate_text_body(req.json(), partial=False))


@app.patch("/memes/<int:meme_id>", body=("multipart", "json"), max_body=upload_limit,
           request_schema=docs.PATCH_BODIES, response_schema=docs.MEME, description=docs.RULES,
           example=Example(params=docs.ONE, body={"title": "Logo v2"},
                           response={**docs.MEME_EXAMPLE, "title": "Logo v2"}))
def patch_meme(req: ApiRequest, meme_id: int) -> dict[str, Any]:
    """Change a meme: a multipart form replaces the image, a JSON object some of the text."""
    if req.content_type.partition(";")[0].strip().lower() == "multipart/form-data":
        return replace_image(req, meme_id)
    return update_text(req, meme_id, validate_text_body(req.json(), partial=True))


@app.patch("/memes/<int:meme_id>/image", body="multipart", max_body=upload_limit,
           request_schema=docs.IMAGE_FORM, response_schema=docs.MEME, description=docs.RULES,
           example=Example(params=docs.ONE, body={"image": docs.FORM_EXAMPLE["image"]},
                           response=docs.MEME_EXAMPLE))
@app.patch("/memes/<int:meme_id>/update_image", body="multipart", max_body=upload_limit,
           request_schema=docs.IMAGE_FORM, response_schema=docs.MEME, description=docs.RULES,
           summary="Replace a meme's image (an alias of /memes/{meme_id}/image)",
           example=Example(params=docs.ONE, body={"image": docs.FORM_EXAMPLE["image"]},
                           response=docs.MEME_EXAMPLE))
def patch_image(req: ApiRequest, meme_id: int) -> dict[str, Any]:
    """Replace a meme's image; the old image URL stops working."""
    return replace_image(req, meme_id)


@app.delete("/memes/<int:meme_id>", status=204, example=Example(params=docs.ONE))
def delete_meme(req: ApiRequest, meme_id: int) -> None:
    """Delete a meme and its image; 404 if there is no such meme."""
    image_key = store.delete(req.db, meme_id)
    if image_key is None:
        raise not_found(meme_id)
    images.remove(req.settings, image_key)


def read_image_form(req: ApiRequest) -> Form:
    """The request's form; image parts past the limit are 413 while they stream in."""
    return read_form(req, spool_dir=images.spool_dir(req.settings),
                     max_file_size=req.settings["meme_image_max_bytes"],
                     max_field_size=FORM_OVERHEAD)


def update_text(req: ApiRequest, meme_id: int, texts: dict[str, str]) -> dict[str, Any]:
    updated = store.update(req.db, meme_id, texts)
    if updated is None:
        raise not_found(meme_id)
    return meme(req, updated[0])


def replace_image(req: ApiRequest, meme_id: int) -> dict[str, Any]:
    """New file, then the row in one transaction, then (committed) the old file goes."""
    with read_image_form(req) as form:
        texts, upload = validate_form(form, new=False)

        def record(key: str) -> tuple[tuple, str]:
            updated = store.update(req.db, meme_id,
                                   {**texts, "image_key": key, "image_mime": upload.mime})
            if updated is None:
                raise not_found(meme_id)  # after validation: a bad form is 400 first
            return updated

        row, old_key = images.put(req.settings, upload.part, upload.mime, record)
    images.remove(req.settings, old_key)
    return meme(req, row)


@app.on_startup
def sweep_orphans(settings: dict[str, Any]) -> None:
    """Remove image files no row references (left by a crash between file and row)."""
    images.sweep(settings)
