"""A real single-file Django project for tests/test_wsgi_frameworks.py.

    python3 httpd.py --wsgi django_app:application
"""
from __future__ import annotations

import hashlib

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-not-a-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    FILE_UPLOAD_MAX_MEMORY_SIZE=1024 * 1024,  # larger uploads go to a temp file
    DATA_UPLOAD_MAX_MEMORY_SIZE=16 * 1024 * 1024,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402


@require_GET
def json_view(request, number):
    return JsonResponse({"number": number, "square": number * number,
                         "args": request.GET.dict(), "path": request.path,
                         "url": request.build_absolute_uri()})


@require_POST
def upload_view(request):
    upload = request.FILES["file"]
    data = upload.read()
    return JsonResponse({"title": request.POST["title"], "filename": upload.name,
                         "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                         "content_length": int(request.META["CONTENT_LENGTH"])}, status=201)


@require_GET
def stream_view(request, count):
    name = request.GET.get("name", "stream")
    lines = (f"line {i} of {name}\n" for i in range(count))
    return StreamingHttpResponse(lines, content_type="text/plain")


def boom_view(request):
    raise RuntimeError("django view failed")


urlpatterns = [
    path("boom", boom_view),
    path("json/<int:number>", json_view),
    path("upload", upload_view),
    path("stream/<int:count>", stream_view),
]

application = get_wsgi_application()
