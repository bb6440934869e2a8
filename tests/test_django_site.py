"""Django's admin, end to end, as its users run it: log in through the CSRF-protected form,
over WSGI and over ASGI, on both HTTP engines.

Django's WSGI handler sends each ``Set-Cookie`` value with a leading space; the server strips
it (RFC 9110 5.5: a field value has no leading or trailing whitespace) where it once answered
500 to every response that set a cookie, so no form could be posted.
"""

from __future__ import annotations

import re

import httpx
import pytest
from prod_support import Proc

pytest.importorskip("django")


@pytest.mark.parametrize("http", ["fast", "h11"])
@pytest.mark.parametrize("app", ["django_site:wsgi", "django_site:asgi"])
def test_admin_login_with_csrf(tmp_path, app, http):
    proc = Proc.treadle(
        app, "--port", "0", "--http", http, "--lifespan", "off", env={"TREADLE_TEST_DJANGO_DB": str(tmp_path / "db")}
    )
    try:
        port = proc.port()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            form = client.get("/admin/login/?next=/admin/")
            assert form.status_code == 200
            assert "csrftoken" in client.cookies
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)

            refused = client.post("/admin/login/?next=/admin/", data={"username": "admin", "password": "secret-pass"})
            assert refused.status_code == 403  # no CSRF token: the middleware really checks

            logged_in = client.post(
                "/admin/login/?next=/admin/",
                data={"username": "admin", "password": "secret-pass", "csrfmiddlewaretoken": token},
            )
            assert logged_in.status_code == 302
            assert logged_in.headers["location"] == "/admin/"
            assert "sessionid" in client.cookies

            index = client.get("/admin/")
            assert index.status_code == 200
            assert "Site administration" in index.text
        assert proc.count(r"ERROR") == 0, proc.output()
    finally:
        proc.kill_group()
