"""JSON Schemas and worked examples of the uploads app, for /openapi.json."""

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
