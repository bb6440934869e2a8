"""A real Django project in one module: the admin, sessions, auth and CSRF middleware on a
SQLite database, served over WSGI (``django_site:wsgi``) or ASGI (``django_site:asgi``).

Run in its own server process (tests/test_django_site.py), since Django's settings are
global to a process. ``TREADLE_TEST_DJANGO_DB`` names the database file; importing this
module migrates it and creates the ``admin`` user (password ``secret-pass``).
"""

from __future__ import annotations

import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["TREADLE_TEST_DJANGO_DB"]}},
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    STATIC_URL="/static/",
)
django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
if not User.objects.filter(username="admin").exists():
    User.objects.create_superuser("admin", "admin@example.com", "secret-pass")

urlpatterns = [path("admin/", admin.site.urls)]
wsgi = get_wsgi_application()
asgi = get_asgi_application()
