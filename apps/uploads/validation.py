"""The upload form's rule: exactly one named, non-empty file part called ``file``."""
from __future__ import annotations

from framework.web.multipart import FilePart, Form
from framework.web.validate import validation_error

# Django REST framework's messages for a FileField, which existing clients may know
NO_FILE = "No file was submitted."
NOT_A_FILE = "The submitted data was not a file. Check the encoding type on the form."
NO_NAME = "No filename could be determined."
EMPTY = "The submitted file is empty."
MANY = "Only one file may be submitted in the 'file' field."


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
