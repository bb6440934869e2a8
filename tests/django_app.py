"""A minimal Django project in one module, for the WSGI framework tests: a form post, a
file upload and a streamed download."""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
        DATA_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024,
        FILE_UPLOAD_MAX_MEMORY_SIZE=64 * 1024,  # larger uploads go through a temp file
    )
    django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


@csrf_exempt
def form(request):
    return JsonResponse({"fields": request.POST.dict(), "script": request.META["SCRIPT_NAME"], "path": request.path})


@csrf_exempt
def upload(request):
    upload = request.FILES["file"]
    data = upload.read()
    return JsonResponse({"name": upload.name, "size": len(data), "sum": sum(data) % 65521})


def download(request):
    def chunks():
        for i in range(100):
            yield b"%05d" % i * 2000

    return StreamingHttpResponse(chunks(), content_type="application/octet-stream")


def hello(request):
    return HttpResponse("hello from django")


urlpatterns = [path("form", form), path("upload", upload), path("download", download), path("", hello)]
application = WSGIHandler()
