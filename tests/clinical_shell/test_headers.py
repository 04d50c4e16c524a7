"""Response headers: a CSP with no inline script, no-store on patient data, HSTS behind TLS.

The template scan covers every page template of every app, including pages added later: an
inline `<script>` or `on...=` handler anywhere fails here before a browser would refuse it.
"""

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from shell_personas import Personas

import clinical_shell
from clinical_shell.records.models import Patient

SHELL_DIR = Path(clinical_shell.__file__).resolve().parent
TEMPLATES = sorted(
    p for p in SHELL_DIR.rglob("templates/**/*.html") if "node_modules" not in p.parts
)
# <script> with content; json_script's data blocks (type="application/json") are not scripts
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


class _ScriptFinder(HTMLParser):
    """Inline scripts, event-handler attributes and javascript: URLs of one rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").strip().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:...>")
        if tag == "script" and "src" not in named and named.get("type") != "application/json":
            self._in_inline_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False if tag == "script" else self._in_inline_script

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:60]}")


def test_the_scan_sees_the_templates() -> None:
    names = {p.name for p in TEMPLATES}
    assert {"base.html", "case_build.html", "duplicate_review.html"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(SHELL_DIR)))
def test_no_template_carries_inline_script(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    offences = (
        [m.group(0) for m in _INLINE_SCRIPT.finditer(text)]
        + [m.group(0) for m in _HANDLER.finditer(text)]
        + [m.group(0) for m in _JS_URL.finditer(text)]
    )
    assert offences == []


def _pages(patient: Patient) -> list[str]:
    return [
        "/patients/",
        f"/patients/{patient.pk}/",
        f"/patients/{patient.pk}/encounters/new/",
        "/patients/duplicates/",
        "/imaging/",
        f"/imaging/patients/{patient.pk}/",
        "/stations/",
        "/api/v1/docs",  # django-ninja's Swagger UI: its scripts are static files too
    ]


def test_rendered_pages_have_no_inline_script_and_a_csp_that_forbids_it(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.county_surgeon)
    for url in _pages(patient_in_shuangbai):
        response = client.get(url)
        assert response.status_code == 200, url
        finder = _ScriptFinder()
        finder.feed(response.content.decode())
        assert finder.found == [], url
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in response["Content-Security-Policy"].split(";")
        )
        assert "'unsafe-inline'" not in policy["script-src"], url
        assert "'unsafe-eval'" not in policy["script-src"], url


def test_patient_pages_and_api_answers_are_not_stored(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.county_surgeon)
    for url in [
        *_pages(patient_in_shuangbai),
        f"/api/v1/patients/{patient_in_shuangbai.pk}",
        "/api/v1/patients?q=zsf",
        "/api/v1/patients/999999",  # an error says something too (that the id is unknown)
    ]:
        response = client.get(url)
        assert "no-store" in response["Cache-Control"], url
    # the sign-in page is no exception: nothing the server renders is cached
    assert "no-store" in Client().get("/accounts/sign-in/")["Cache-Control"]


@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_static_files_keep_their_own_caching(db: None) -> None:
    # (in-process tests run without collectstatic: WhiteNoise finds the file in the source)
    response = Client().get("/static/shell/language.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=31536000,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)
def test_behind_tls_the_shell_sends_hsts_and_secure_cookies(db: None) -> None:
    # what deploy/systemd/osteon.env.example sets behind deploy/nginx (which sends the header)
    client = Client()
    page = client.get("/accounts/sign-in/", headers={"x-forwarded-proto": "https"})
    assert page.status_code == 200
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    # plain HTTP (no proxy header) gets no HSTS: browsers ignore it there, and it would lie
    assert "Strict-Transport-Security" not in client.get("/accounts/sign-in/")
