"""Registration: identity checked at once, possible duplicates shown before anything is saved,
registering anyway only on an explicit confirmation; demographics edit with history; problem
list and allergies."""

import re
from html.parser import HTMLParser
from typing import Any

from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records.models import (
    Allergy,
    CareRelationship,
    DuplicateCandidate,
    Patient,
    Problem,
    RecordVersion,
)

NEW = "/patients/new/"
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# 532322 双柏县, born 1990-07-21, sequence 246 (even: female), GB 11643 check character 2
SHUANGBAI_WOMAN_ID = "532322199007212462"


def _form(network: Network, **fields: str) -> dict[str, str]:
    return {
        "name": "李秀英",
        "sex": "F",
        "birth_date": "1990-07-21",
        "resident_id": SHUANGBAI_WOMAN_ID,
        "phone": "13800000000",
        "address": "双柏县妥甸镇",
        "institution": str(network.shuangbai.pk),
        **fields,
    }


def test_a_new_patient_is_registered_and_the_timeline_opens(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    assert client.get(NEW).status_code == 200
    response = client.post(NEW, _form(shell_network))
    patient = Patient.objects.get(name="李秀英")
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    assert (
        patient.resident_id == SHUANGBAI_WOMAN_ID
        and patient.registered_at == shell_network.shuangbai
    )
    assert CareRelationship.objects.filter(patient=patient, kind="registration").exists()
    assert AuditEvent.objects.filter(action="patient.register", patient_id=patient.pk).exists()


def test_a_possible_duplicate_is_shown_before_saving_and_needs_confirmation(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    client = signed_in_client(personas.county_surgeon)
    # the same man typed again, under 章 instead of 张 and without the ID number: same pinyin
    form = _form(shell_network, name="章三丰", sex="M", birth_date="1958-03-14", resident_id="")
    shown = client.post(NEW, form)
    assert shown.status_code == 422
    html = shown.content.decode()
    assert 'id="possible-duplicates"' in html and "张三丰" in html and "拼音和出生日期相同" in html
    assert "5323**********1230" in html and SHUANGBAI_MAN_ID not in html
    assert not Patient.objects.filter(name="章三丰").exists()
    assert AuditEvent.objects.filter(
        action="patient.duplicate_check", actor_user_id=personas.county_surgeon.pk
    ).exists()
    # a confirmation that names other rows than those shown does not count
    stale = client.post(NEW, {**form, "confirm_duplicates": "999999"})
    assert stale.status_code == 422 and not Patient.objects.filter(name="章三丰").exists()
    confirmed = client.post(NEW, {**form, "confirm_duplicates": str(patient_in_shuangbai.pk)})
    assert confirmed.status_code == 302
    twin = Patient.objects.get(name="章三丰")
    assert confirmed["Location"] == f"/patients/{twin.pk}/"
    # registered anyway: the pair waits in the duplicate review
    assert DuplicateCandidate.objects.filter(
        patient=twin, other=patient_in_shuangbai, reason="same_pinyin"
    ).exists()


def test_the_same_id_number_is_a_possible_duplicate(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    client = signed_in_client(personas.outsider)  # 永仁: not treating 张三丰
    form = _form(
        shell_network,
        name="张三风",
        sex="M",
        birth_date="1958-03-14",
        resident_id=SHUANGBAI_MAN_ID,
        institution=str(shell_network.yongren.pk),
    )
    html = client.post(NEW, form).content.decode()
    assert "身份证号相同" in html and "非本机构患者" in html
    # no link into a record the outsider may not open
    assert f'href="/patients/{patient_in_shuangbai.pk}/"' not in html
    client.post(NEW, {**form, "confirm_duplicates": str(patient_in_shuangbai.pk)})
    twin = Patient.objects.get(name="张三风")
    assert DuplicateCandidate.objects.filter(
        patient=twin, other=patient_in_shuangbai, reason="same_resident_id"
    ).exists()


def test_a_bad_id_is_refused_with_every_error_at_once(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    bad_check = _form(shell_network, name="", resident_id="532322199007212463")
    html = client.post(NEW, bad_check).content.decode()
    assert 'id="id_name-errors"' in html and 'id="id_resident_id-errors"' in html
    assert "身份证号校验位错误" in html
    # a valid number that disagrees with the sex and birth date typed: both are named
    mismatch = _form(shell_network, sex="M", birth_date="1990-07-22")
    response = client.post(NEW, mismatch)
    assert response.status_code == 422
    html = response.content.decode()
    assert "性别与身份证号不符" in html and "出生日期与身份证号不符" in html
    assert 'aria-invalid="true"' in html
    assert not Patient.objects.exists()


def test_only_writers_register_and_only_at_their_institutions(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    assert signed_in_client(personas.radiologist).get(NEW).status_code == 403
    client = signed_in_client(personas.county_surgeon)
    elsewhere = client.post(NEW, _form(shell_network, institution=str(shell_network.yongren.pk)))
    assert elsewhere.status_code == 422 and not Patient.objects.exists()


def test_the_registration_page_renders_in_chinese_and_english(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    chinese = client.get(NEW).content.decode()
    assert "新建患者" in chinese and "身份证号" in chinese and 'class="required"' in chinese
    client.post("/i18n/setlang/", {"language": "en", "next": NEW})
    english = client.get(NEW).content.decode()
    assert "Register patient" in english and "新建患者" not in english and "必填" not in english


def test_demographics_change_keeps_every_version_and_shows_it(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    url = f"/patients/{patient_in_shuangbai.pk}/edit/"
    form = {
        "name": "张三丰",
        "sex": "M",
        "birth_date": "1958-03-14",
        "resident_id": SHUANGBAI_MAN_ID,
        "phone": "0878-1234567",
        "address": "双柏县城",
        "reason": "",
    }
    refused = client.post(url, {**form, "birth_date": "1958-03-15"})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'id="id_reason-errors"' in html and "出生日期与身份证号不符" in html
    assert client.post(url, {**form, "reason": "患者补充电话"}).status_code == 302
    patient_in_shuangbai.refresh_from_db()
    assert patient_in_shuangbai.phone == "0878-1234567" and patient_in_shuangbai.version == 2
    versions = RecordVersion.objects.filter(
        model_label="records.patient", object_id=patient_in_shuangbai.pk
    )
    assert sorted(versions.values_list("version", flat=True)) == [1, 2]
    page = client.get(url).content.decode()
    assert "患者补充电话" in page and "0878-1234567" in page and 'class="changed"' in page
    # a reader elsewhere may read the history, not change it
    outsider = signed_in_client(personas.outsider)
    assert outsider.get(url).status_code == 403


def test_problem_list_and_allergies_are_added_resolved_and_removed(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    url = f"/patients/{patient_in_shuangbai.pk}/problems/"
    bad = client.post(
        url,
        {
            "action": "add_problem",
            "problem-description": "",
            "problem-code": "X99.9",
            "problem-status": "active",
        },
    )
    assert bad.status_code == 422
    assert 'id="id_problem-description-errors"' in bad.content.decode()
    assert 'id="id_problem-code-errors"' in bad.content.decode()
    client.post(
        url,
        {
            "action": "add_problem",
            "problem-description": "骨质疏松",
            "problem-code": "m81.0",
            "problem-status": "active",
            "problem-onset_date": "2024-05-01",
        },
    )
    problem = Problem.objects.get(patient=patient_in_shuangbai)
    assert problem.code == "M81.0" and problem.status == "active"
    client.post(url, {"action": "resolve_problem", "item": problem.pk})
    problem.refresh_from_db()
    assert problem.status == "resolved" and problem.version == 2
    client.post(
        url,
        {
            "action": "add_allergy",
            "allergy-substance": "青霉素",
            "allergy-severity": "severe",
            "allergy-reaction": "皮疹",
        },
    )
    allergy = Allergy.objects.get(patient=patient_in_shuangbai)
    kept = client.post(url, {"action": "remove_allergy", "item": allergy.pk, "reason": ""})
    assert kept.status_code == 422
    client.post(url, {"action": "remove_allergy", "item": allergy.pk, "reason": "录入错误"})
    allergy.refresh_from_db()
    assert allergy.deleted_at is not None
    assert (
        AuditEvent.objects.filter(
            action__in=["problem.create", "problem.update", "allergy.create", "allergy.delete"],
            patient_id=patient_in_shuangbai.pk,
        ).count()
        == 4
    )
    # the outsider may not write here
    refused = signed_in_client(personas.outsider).post(
        url, {"action": "resolve_problem", "item": problem.pk}
    )
    assert refused.status_code == 403


class _Visible(HTMLParser):
    """Text a person sees: text nodes and placeholders, outside script, style, code and
    option (institution names are data)."""

    SKIP = frozenset({"script", "style", "code", "option", "title"})

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1
        for name, value in attrs:
            if name in ("placeholder", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def test_record_pages_show_no_chinese_label_in_english(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.post("/i18n/setlang/", {"language": "en", "next": NEW})
    encounter = patient_in_shuangbai.encounters.get()
    p = patient_in_shuangbai.pk
    pages = [
        client.post(NEW, _form(shell_network, name="", resident_id="532322199007212463")),
        client.post(
            NEW,
            _form(shell_network, name="章三丰", sex="M", birth_date="1958-03-14", resident_id=""),
        ),
        client.get(f"/patients/{p}/encounters/{encounter.pk}/"),
        client.post(f"/patients/{p}/encounters/{encounter.pk}/", {"action": "add_diagnosis"}),
        client.get(f"/patients/{p}/edit/"),
        client.get(f"/patients/{p}/problems/"),
    ]
    # what the pages show as data: the patient, institutions, staff, what was recorded
    data = [
        "张三丰",
        "章三丰",
        "王县医",
        "李乡医",
        "双柏县人民医院",
        "双柏县妥甸镇卫生院",
        "跌倒后右髋疼痛",
        "股骨颈骨折",
        "双柏县妥甸镇",
        "李秀英",
    ]
    for response in pages:
        parser = _Visible()
        parser.feed(response.content.decode())
        text = " ".join(parser.parts)
        for value in data:
            text = text.replace(value, "")
        assert "Back to" in text and response.status_code in (200, 422)
        assert not CHINESE.search(text), (response.request["PATH_INFO"], CHINESE.findall(text))
