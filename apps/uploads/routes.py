"""HTTP endpoints of the uploads app (API.md §C.1): POST /upload/, GET /files/, /media/.

An upload is parsed as a stream (framework.multipart) straight into the media store's spool
directory, typed by its content (framework.sniff), moved under ``<subtype>/<safe name>`` and
recorded as pending; the processor (processor.py) later marks it processed.
"""
from __future__ import annotations

from typing import Any

from apps.uploads import store
from apps.uploads.tables import SCHEMA
from framework.web import media
from framework.web.app import ApiRequest, App, Example, created, validation_error
from framework.web.db import transaction
from framework.web.multipart import FilePart, Form, read_form
from framework.web.pagination import paginate
from framework.web.responses import Response
from framework.web.sniff import sniff

app = App("uploads", schema=SCHEMA, title="File uploads")
media.mount(app)

FILE_SCHEMA = {
    "type": "object", "required": ["file", "uploaded_at", "processed"],
    "properties": {
        "file": {"type": "string", "format": "uri",
                 "description": "absolute URL of the stored file under /media/"},
        "uploaded_at": {"type": "string", "format": "date-time"},
        "processed": {"type": "boolean",
                      "description": "false until the background processor is done"},
    },
}
UPLOAD_FORM = {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "one non-empty file part with a file name"}},
}
FILE_EXAMPLE = {"file": "http://localhost:8080/media/plain/notes.txt",
                "uploaded_at": "2024-03-05T12:34:56.789012Z", "processed": False}
# DRF's messages for the FileField, which the seed's clients may know
NO_FILE = "No file was submitted."
NOT_A_FILE = "The submitted data was not a file. Check the encoding type on the form."
NO_NAME = "No filename could be determined."
EMPTY = "The submitted file is empty."
MANY = "Only one file may be submitted in the 'file' field."


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


def the_file(form: Form) -> FilePart:
    """The one non-empty, named file part called ``file``, or a 400 saying what is wrong."""
    parts = form.files.get("file", [])
    if not parts:
        raise validation_error({"file": [NOT_A_FILE if "file" in form.fields else NO_FILE]})
    if len(parts) > 1:
        raise validation_error({"file": [MANY]})
    part = parts[0]
    if not part.filename.strip():
        raise validation_error({"file": [NO_NAME]})
    if part.size == 0:
        raise validation_error({"file": [EMPTY]})
    return part


def list_files(req: ApiRequest) -> dict[str, Any]:
    """All uploaded files in upload order, 10 per page, with their processing status."""
    conn = req.db
    with transaction(conn, immediate=False):  # count and page from one snapshot
        return paginate(req, store.count_files(conn), lambda limit, offset: [
            file_item(req, *row) for row in store.list_files(conn, limit, offset)],
            client_page_size=False)


def file_item(req: ApiRequest, rel_path: str, uploaded_at: str, status: str) -> dict[str, Any]:
    """The seed serializer's exact three keys (API.md §C.1)."""
    return {"file": media.media_url(req, rel_path), "uploaded_at": uploaded_at,
            "processed": status == "done"}


for path in ("/upload/", "/api/v1.0/upload/"):
    app.post(path, status=201, body="multipart", max_body="upload_max_body",
             request_schema=UPLOAD_FORM, response_schema=FILE_SCHEMA,
             example=Example(body={"file": "hello\n"}, response=FILE_EXAMPLE))(upload_file)
for path in ("/files/", "/api/v1.0/files/"):
    app.get(path, paginated=True, response_schema=FILE_SCHEMA, example=Example(
        params={"page": "1"}, response={"count": 1, "next": None, "previous": None,
                                      "results": [{**FILE_EXAMPLE, "processed": True}]}))(
        list_files)
