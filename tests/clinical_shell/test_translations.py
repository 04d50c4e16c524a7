"""Every page and API error in Chinese and in English, with no text left in the other language.

The visible text of each page (text nodes, titles, placeholders, labels for screen readers;
not scripts or styles) is scanned after the data shown on it (patient, institution and staff
names, study descriptions, what people typed) is taken out: in English no Chinese character
may remain, in Chinese no English word outside a short list of technical terms.
"""

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.utils.translation import gettext_lazy
from pydicom import dcmread
from pydicom.data import get_testdata_file
from shell_personas import PERSONA_PASSWORD, Network, Personas

from clinical_shell.imaging.models import Series, Study
from clinical_shell.network.models import Department, Institution, Person
from clinical_shell.notifications.services import notify
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, Encounter, Patient

LANGUAGES = ("zh-hans", "en")
# Chinese characters and the full-width punctuation that comes with Chinese sentences
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
# words a Chinese page may show as they are: standards, file formats, units, DICOM keywords
TECHNICAL_WORDS = {
    "AO",
    "CM",
    "CT",
    "DICM",
    "DICOM",
    "ICD",
    "MiB",
    "MR",
    "mm",
    "OTA",
    "TOTP",  # RFC 6238, the name authenticator apps show
    "zip",
    "zsf",  # the example in the search box: pinyin initials are typed in Latin letters
}


class _VisibleText(HTMLParser):
    """Text a person sees or hears: text nodes and the text of placeholder, aria-label, title.

    `<code>` holds machine text in any language (error codes, ICD codes, ID numbers).
    """

    HIDDEN = frozenset({"script", "style", "template", "code"})
    SPOKEN = ("placeholder", "aria-label", "title", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        self.parts += [value for name, value in attrs if name in self.SPOKEN and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


def without_data(text: str, data: set[str]) -> str:
    # longest first, so a name is removed whole before a shorter name inside it
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, "␣")
    return text


def other_language_in(text: str, language: str) -> list[str]:
    """The snippets of the other language left in `text` (with a little context each)."""
    if language == "en":
        hits = [m.start() for m in CHINESE.finditer(text)]
    else:
        hits = [m.start() for m in ENGLISH_WORD.finditer(text) if m.group() not in TECHNICAL_WORDS]
    return [text[max(0, i - 15) : i + 15].replace("\n", " | ") for i in hits]


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    user: User | None
    form: dict[str, Any] | None = None  # POST these (a fresh dict per request)
    status: int = 200


@dataclass(frozen=True)
class Shell:
    pages: list[Page]
    data: set[str]  # values from the database that pages show as they are


def _dicom(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()  # type: ignore[arg-type]


def _files(**named: bytes) -> list[io.BytesIO]:
    handles = []
    for name, data in named.items():
        handle = io.BytesIO(data)
        handle.name = name
        handles.append(handle)
    return handles


def _upload(
    client: Client, institution: Institution, *, patient: Patient | None, name: str
) -> None:
    extra = {"patient": str(patient.pk)} if patient is not None else {}
    response = client.post(
        "/imaging/upload/",
        {"institution": str(institution.pk), "files": _files(**{name: _dicom(name)}), **extra},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200 and response.json()["stored"], response.content


@pytest.fixture
def shell(
    tmp_path: Path,
    settings: Any,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> Shell:
    """A patient seen at 双柏 with a possible duplicate, an allergy, a CT study (linked) and an MR
    study waiting for reconciliation; every page of the records and imaging apps over them."""
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"
    surgeon = personas.county_surgeon
    twin = records.register_patient(
        actor=surgeon,
        institution=shell_network.shuangbai,
        name=patient_in_shuangbai.name,
        sex=patient_in_shuangbai.sex,
        birth_date=patient_in_shuangbai.birth_date,
        phone="13800000000",
    )
    records.add_allergy(
        actor=surgeon, patient=patient_in_shuangbai, substance="青霉素", severity="severe"
    )
    candidate = DuplicateCandidate.objects.get(patient=twin)
    notify([surgeon], title=gettext_lazy("通知"))
    client = signed_in_client(surgeon)
    _upload(client, shell_network.shuangbai, patient=patient_in_shuangbai, name="CT_small.dcm")
    _upload(client, shell_network.shuangbai, patient=None, name="MR_small.dcm")
    series = Series.objects.get(study__patient=patient_in_shuangbai)
    p = patient_in_shuangbai.pk
    typed = {"reason": "本人到院核实"}
    uploaded = {"notes.txt", "CT_small.dcm", "MR_small.dcm"}
    pages = [
        Page("sign-in", "/accounts/sign-in/", None),
        Page(
            "sign-in refused",
            "/accounts/sign-in/",
            None,
            {"username": surgeon.username, "password": PERSONA_PASSWORD + "x"},
        ),
        Page("unlock", "/accounts/unlock/", None),
        Page(
            "unlock refused",
            "/accounts/unlock/",
            None,
            {"username": surgeon.username, "password": PERSONA_PASSWORD, "code": "123456"},
        ),
        Page("password change", "/accounts/password/", surgeon),
        Page(
            "password change refused",
            "/accounts/password/",
            surgeon,
            {"old_password": PERSONA_PASSWORD, "new_password": "123", "new_password_again": "123"},
        ),
        Page("account security", "/accounts/security/", surgeon),
        Page("authenticator enrolment", "/accounts/security/", surgeon, {"action": "begin"}),
        Page("locked accounts", "/accounts/locks/", personas.admin),
        Page("api tokens", "/accounts/tokens/", surgeon),
        Page(
            "api token minted",
            "/accounts/tokens/",
            surgeon,
            {"name": "7", "scopes": "read:patients", "lifetime_h": "8"},
        ),
        Page(
            "api tokens refused",
            "/accounts/tokens/",
            surgeon,
            {"name": "", "lifetime_h": "8"},
            422,
        ),
        Page("api tokens, role without", "/accounts/tokens/", personas.quality_manager),
        Page("patient search", "/patients/", surgeon),
        Page("notifications", "/notifications/", surgeon),
        Page("patient search by initials", "/patients/?q=zsf", surgeon),
        Page("timeline", f"/patients/{p}/", surgeon),
        Page("encounter form", f"/patients/{p}/encounters/new/", surgeon),
        Page(
            "encounter form with errors",
            f"/patients/{p}/encounters/new/",
            surgeon,
            {
                "institution": str(shell_network.shuangbai.pk),
                "kind": "outpatient",
                "started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "chief_complaint": "",
                "icd10_code": "bad",
                "ao_ota_code": "bad",
            },
            status=422,
        ),
        Page("duplicate queue", "/patients/duplicates/", surgeon),
        Page("duplicate review", f"/patients/duplicates/{candidate.pk}/", surgeon),
        Page(
            "duplicate merge confirmation",
            f"/patients/duplicates/{candidate.pk}/",
            surgeon,
            {"action": "merge", "survivor": str(p), **typed},
        ),
        Page(
            "duplicate merge without reason",
            f"/patients/duplicates/{candidate.pk}/",
            surgeon,
            {"action": "merge"},
            status=422,
        ),
        Page("refused record", f"/patients/{p}/", personas.outsider, status=403),
        Page("imaging index", "/imaging/", surgeon),
        Page("patient studies", f"/imaging/patients/{p}/", surgeon),
        Page("patient plans", f"/planning/patients/{p}/", surgeon),
        Page(
            "upload report",
            "/imaging/upload/",
            surgeon,
            {"institution": str(shell_network.shuangbai.pk), "patient": str(p)},
            status=422,
        ),
        Page("viewer", f"/imaging/series/{series.pk}/", surgeon),
    ]
    data = {
        *typed.values(),
        *uploaded,
        # each language's own name in the language switch
        "简体中文",
        "English",
        *Patient.objects.values_list("name", flat=True),
        *Patient.objects.values_list("name_pinyin", flat=True),
        *Institution.objects.values_list("name", flat=True),
        *Person.objects.values_list("full_name", flat=True),
        *Department.objects.values_list("name", flat=True),
        *Encounter.objects.values_list("chief_complaint", flat=True),
        *patient_in_shuangbai.encounters.values_list("diagnoses__description", flat=True),
        "青霉素",
        *Study.objects.values_list("description", flat=True),
        *Study.objects.values_list("dicom_patient_name", flat=True),
        *Study.objects.values_list("dicom_patient_id", flat=True),
        *Series.objects.values_list("description", flat=True),
    }
    return Shell(pages=pages, data={value for value in data if value})


def _render(page: Page, language: str, client_for: Callable[[User], Client]) -> str:
    client = client_for(page.user) if page.user is not None else Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    if page.form is None:
        response = client.get(page.path)
    else:
        form = dict(page.form)
        if page.name == "upload report":
            form["files"] = _files(**{"notes.txt": b"not an image"})
        response = client.post(page.path, form)
    assert response.status_code == page.status, (page.name, response.status_code)
    assert response["Content-Language"] == language, page.name
    return response.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_shows_only_its_language(
    shell: Shell, language: str, signed_in_client: Callable[[User], Client]
) -> None:
    leftovers = {}
    for page in shell.pages:
        html = _render(page, language, signed_in_client)
        assert f'<html lang="{"en" if language == "en" else "zh-CN"}">' in html, page.name
        found = other_language_in(without_data(visible_text(html), shell.data), language)
        if found:
            leftovers[page.name] = found
    assert leftovers == {}


def test_the_scan_finds_text_of_the_other_language() -> None:
    # the check itself: an untranslated label in each direction is caught, data is not
    english_page = (
        "<p>Patient search</p><p>张三丰</p><label>患者检索</label><script>'中文'</script>"
    )
    chinese_page = '<p>患者检索</p><input placeholder="Search">CT<p>zhangsanfeng</p>'
    data = {"张三丰", "zhangsanfeng"}
    assert other_language_in(without_data(visible_text(english_page), data), "en") != []
    assert len(other_language_in(without_data(visible_text(english_page), data), "en")) == 4
    found = other_language_in(without_data(visible_text(chinese_page), data), "zh-hans")
    assert len(found) == 1 and "Search" in found[0]


def test_refused_upload_reasons_are_in_the_request_language(
    shell: Shell, personas: Personas, shell_network: Network, signed_in_client: Any
) -> None:
    # files are read in worker threads; the reason must still follow the request's language
    client = signed_in_client(personas.county_surgeon)
    for language, expected in (("en", "not a DICOM Part 10 file"), ("zh-hans", "不是 DICOM 文件")):
        response = client.post(
            "/imaging/upload/",
            {"institution": str(shell_network.shuangbai.pk), "files": _files(**{"a.txt": b"x"})},
            headers={"accept": "application/json", "accept-language": language},
        )
        assert expected in response.json()["refused"][0]["reason"]


def _zip(**named: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in named.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("language", "nested", "duplicate", "waiting"),
    [
        (
            "en",
            "Nested zip archives are not accepted",
            "SOP UID already stored with different data",
            "The PatientID is not a resident ID",
        ),
        ("zh-hans", "不接受嵌套 zip", "该 SOP UID 已存在且内容不同", "患者号不是身份证号"),
    ],
)
def test_zip_and_duplicate_refusals_and_the_waiting_reason_are_in_the_request_language(
    tmp_path: Path,
    settings: Any,
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    language: str,
    nested: str,
    duplicate: str,
    waiting: str,
) -> None:
    # zip members and the duplicate check are refused in the upload's worker threads and its
    # transaction; the study's reason is stored as a code: all three read in the request's words
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"
    client = signed_in_client(personas.county_surgeon)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    original = _dicom("CT_small.dcm")
    _upload(client, shell_network.shuangbai, patient=None, name="CT_small.dcm")
    changed = dcmread(io.BytesIO(original))
    changed.PatientName = "OTHER^NAME"  # same SOP Instance UID, other bytes
    buffer = io.BytesIO()
    changed.save_as(buffer)
    archive = _zip(**{"inner.zip": _zip(**{"x.dcm": original}), "a.dcm": buffer.getvalue()})
    response = client.post(
        "/imaging/upload/",
        {"institution": str(shell_network.shuangbai.pk), "files": _files(series=archive)},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    refused = {r["name"]: r["reason"] for r in response.json()["refused"]}
    assert refused == {"series/inner.zip": nested, "series/a.dcm": duplicate}
    # the study waits with the code stored, shown translated in the queue
    study = Study.objects.get()
    assert study.unlinked_reason == Study.UnlinkedReason.NOT_RESIDENT_ID
    assert waiting in client.get("/imaging/").content.decode()


@pytest.mark.parametrize(
    ("cookie", "browser", "expected"),
    [
        (None, "en-US,en;q=0.9", "en"),  # the browser's language
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-hans"),
        (None, "fr-FR,fr;q=0.9,en;q=0.5", "en"),  # the first one the shell has
        (None, "fr-FR,de;q=0.5", "zh-hans"),  # none the shell has: Chinese
        (None, None, "zh-hans"),
        ("en", "zh-CN", "en"),  # the person's choice wins over the browser
        ("zh-hans", "en-US", "zh-hans"),
        ("xx", "en-US", "en"),  # an unknown choice is ignored
    ],
)
def test_the_language_is_the_choice_then_the_browser_then_chinese(
    db: None, cookie: str | None, browser: str | None, expected: str
) -> None:
    client = Client()
    if cookie is not None:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie
    headers = {"accept-language": browser} if browser is not None else {}
    response = client.get("/accounts/sign-in/", headers=headers)
    assert response["Content-Language"] == expected
    assert "Accept-Language" in response["Vary"]
    title = "<h1>Sign in</h1>" if expected == "en" else "<h1>登录</h1>"
    assert title in response.content.decode()


class _LanguageForm(HTMLParser):
    """The language switch: its action and the fields it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.options: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "language-form":
            self._inside, self.action = True, a["action"]
        elif self._inside and tag == "input":
            self.fields[a["name"]] = a.get("value", "")
        elif self._inside and tag == "option":
            self.options.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def test_the_language_switch_on_every_page_changes_the_language(
    shell: Shell, signed_in_client: Callable[[User], Client]
) -> None:
    for page in (p for p in shell.pages if p.form is None and p.status == 200):
        client = signed_in_client(page.user) if page.user is not None else Client()
        client.handler.enforce_csrf_checks = True
        switch = _LanguageForm()
        switch.feed(client.get(page.path, headers={"accept-language": "zh-CN"}).content.decode())
        assert switch.options == ["zh-hans", "en"], page.name
        # what the browser posts when English is picked: the page's own form, CSRF token and all
        chosen = client.post(switch.action, {**switch.fields, "language": "en"})
        assert chosen.status_code == 302 and chosen["Location"] == page.path, page.name
        assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
        again = client.get(page.path, headers={"accept-language": "zh-CN"})
        assert again["Content-Language"] == "en", page.name


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        ("en", "Not found", "No patient with number 999999"),
        ("zh-hans", "未找到", "未找到编号为 999999 的患者"),
    ],
)
def test_api_errors_are_in_the_request_language(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    language: str,
    title: str,
    detail: str,
) -> None:
    client = signed_in_client(personas.county_surgeon)
    headers = {"accept-language": language}
    missing = client.get("/api/v1/patients/999999", headers=headers)
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    problem = missing.json()
    assert (problem["title"], problem["detail"], problem["code"]) == (
        title,
        detail,
        "patient_not_found",
    )
    # a refusal, a validation error and no credentials, each in the same language
    refused = signed_in_client(personas.outsider).get(
        f"/api/v1/patients/{patient_in_shuangbai.pk}", headers=headers
    )
    invalid = client.post(
        "/api/v1/patients", "{}", content_type="application/json", headers=headers
    )
    anonymous = Client().get("/api/v1/patients", headers=headers)
    bodies = [refused.json(), invalid.json(), anonymous.json()]
    assert [b["status"] for b in bodies] == [403, 422, 401]
    for body in bodies:
        text = body["title"] + body["detail"]
        assert (CHINESE.search(text) is None) == (language == "en"), body


def _catalogues() -> list[Path]:
    shell_dir = Path(__file__).resolve().parents[2] / "clinical_shell"
    found = sorted(shell_dir.glob("locale/*/LC_MESSAGES/*.po"))
    found += sorted(shell_dir.glob("*/locale/*/LC_MESSAGES/*.po"))
    return found


@dataclass
class _Entry:
    flags: set[str]
    msgid: str
    msgid_plural: str
    msgstr: list[str]
    obsolete: bool


def parse_po(text: str) -> list[_Entry]:
    """The entries of a gettext catalogue (enough of the format for these checks)."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        flags: set[str] = set()
        fields: dict[str, list[str]] = {}
        current = ""
        obsolete = False
        for line in block.splitlines():
            if line.startswith("#~"):
                obsolete = True
            elif line.startswith("#,"):
                flags |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[current].append(_unquote(line))
            else:
                current, _, value = line.partition(" ")
                fields[current] = [_unquote(value)]
        plural_keys = sorted(k for k in fields if k.startswith("msgstr["))
        entries.append(
            _Entry(
                flags=flags,
                msgid="".join(fields.get("msgid", [])),
                msgid_plural="".join(fields.get("msgid_plural", [])),
                msgstr=["".join(fields[k]) for k in (plural_keys or ["msgstr"]) if k in fields],
                obsolete=obsolete,
            )
        )
    return entries


def _unquote(quoted: str) -> str:
    return quoted.strip()[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


# the name of the language English, as the switch shows it in every language (settings.LANGUAGES)
ENGLISH_MSGIDS = {
    "English",
    # Django 5.2's own msgid, which Django's zh_Hans catalogue lacks (accounts' zh_Hans catalogue)
    "This password is too short. It must contain at least %d character.",
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|\{\w*\}")


@pytest.mark.parametrize("catalogue", _catalogues(), ids=lambda p: str(p.parts[-5:]))
def test_catalogues_have_no_fuzzy_empty_or_obsolete_entry(catalogue: Path) -> None:
    entries = parse_po(catalogue.read_text(encoding="utf-8"))
    header, messages = entries[0], entries[1:]
    assert header.msgid == "" and "Language: " in header.msgstr[0]
    assert messages, catalogue
    problems = []
    for entry in messages:
        if entry.obsolete or "fuzzy" in entry.flags or not all(entry.msgstr):
            problems.append(entry.msgid)
        # an English text must carry the same %(name)s values as its Chinese msgid
        for text in entry.msgstr:
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(entry.msgid)):
                problems.append(f"{entry.msgid} -> {text}")
        # the msgids are Chinese: an English msgid means a text that was not converted
        if not CHINESE.search(entry.msgid) and entry.msgid not in ENGLISH_MSGIDS:
            problems.append(f"English msgid: {entry.msgid}")
    assert problems == []
    compiled = catalogue.with_suffix(".mo")
    assert compiled.exists() and compiled.stat().st_mtime >= catalogue.stat().st_mtime, (
        f"{compiled} is missing or older than its catalogue: run `make messages`"
    )


def test_the_catalogue_parser_sees_fuzzy_and_empty_entries() -> None:
    sample = (
        'msgid ""\nmsgstr "Language: en\\n"\n\n#, fuzzy\nmsgid "冲突"\nmsgstr "Password"\n\n'
        'msgid "登录"\nmsgstr ""\n\nmsgid "%(n)s 幅图像"\nmsgid_plural "%(n)s 幅图像"\n'
        'msgstr[0] "%(n)s image"\nmsgstr[1] ""\n"%(n)s images"\n\n#~ msgid "旧"\n#~ msgstr "old"'
    )
    entries = parse_po(sample)
    assert [e.msgid for e in entries] == ["", "冲突", "登录", "%(n)s 幅图像", ""]
    assert "fuzzy" in entries[1].flags and entries[2].msgstr == [""]
    assert entries[3].msgstr == ["%(n)s image", "%(n)s images"] and entries[4].obsolete
