"""HTTP endpoints of the uploads app: POST /upload/, GET /files/, /media/.

An upload is parsed as a stream (framework.multipart) straight into the media store's spool
directory, typed by its content (framework.sniff), moved under ``<subtype>/<safe name>`` and
recorded as pending; the processor (processor.py) later marks it processed.
"""
from __future__ import annotations

from typing import Any

from apps.uploads import docs, store
from apps.uploads.tables import SCHEMA
from apps.uploads.validation import the_file
from framework.web import media
from framework.web.app import ApiRequest, App, Example, created
from framework.web.db import transaction
from framework.web.multipart import read_form
from framework.web.pagination import paginate
from framework.web.responses import Response
from framework.web.sniff import sniff

app = App("uploads", schema=SCHEMA, title="File uploads")
media.mount(app)

def upload_file(req: ApiRequest) -> Response:
    """Upload one file (multipart/form-data field `file`); it is processed in the background.

    The file is stored under /media/<subtype>/<name>, where the subtype is detected from the
    content (the name and the declared Content-Type are ignored) and the name is the
    sanitized filename, with a random suffix if it is taken. Other form fields are ignored.
    """
    files = media.media_store(req.settings)
    with read_form(req, spool_dir=files.incoming) as form:
        part = the_file(form)
        detected = sniff(part.head)

        def record(rel_path: str) -> dict[str, Any]:
            uploaded_at = store.insert_file(req.db, rel_path, part.filename, detected.mime,
                                            part.size)
            return file_item(req, rel_path, uploaded_at, "pending")

        item = files.save(part, detected.subtype, part.filename, record)
    return created(item, item["file"])


def list_files(req: ApiRequest) -> dict[str, Any]:
    """All uploaded files in upload order, 10 per page, with their processing status."""
    conn = req.db
    with transaction(conn, immediate=False):  # count and page from one snapshot
        return paginate(req, store.count_files(conn), lambda limit, offset: [
            file_item(req, *row) for row in store.list_files(conn, limit, offset)],
            client_page_size=False)


def file_item(req: ApiRequest, rel_path: str, uploaded_at: str, status: str) -> dict[str, Any]:
    """The three keys of a file, as Django REST framework's serializer gave them."""
    return {"file": media.media_url(req, rel_path), "uploaded_at": uploaded_at,
            "processed": status == "done"}


for path in ("/upload/", "/api/v1.0/upload/"):
    app.post(path, status=201, body="multipart", max_body="upload_max_body",
             request_schema=docs.UPLOAD_FORM, response_schema=docs.FILE_SCHEMA,
             example=Example(body={"file": "hello\n"}, response=docs.FILE_EXAMPLE))(upload_file)
for path in ("/files/", "/api/v1.0/files/"):
    app.get(path, paginated=True, response_schema=docs.FILE_SCHEMA, example=Example(
        params={"page": "1"}, response={"count": 1, "next": None, "previous": None,
                                      "results": [{**docs.FILE_EXAMPLE, "processed": True}]}))(
        list_files)
