"""Referral pages: the flow through the forms, the letter in Chinese, both languages, the live
emergency topic."""

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.records import services as records
from clinical_shell.records.models import Patient
from clinical_shell.referrals import services
from clinical_shell.referrals.access import may_hear_institution
from clinical_shell.referrals.models import Direction, Referral, ReferralShare, State

pytestmark = pytest.mark.django_db

CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@pytest.fixture
def patient(shell_network: Network, personas: Personas) -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="杨秀英",
        sex="F",
        birth_date=date(1944, 6, 2),
    )


def _visible_text(html: str) -> str:
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"(?s)<[^>]+>", " ", html)


def test_flow_through_the_pages_and_the_letter(
    shell_network: Network,
    personas: Personas,
    patient: Patient,
    signed_in_client: Callable[..., Client],
) -> None:
    net = shell_network
    township = signed_in_client(personas.township_doctor)
    county = signed_in_client(personas.county_surgeon)
    note = records.add_document(
        actor=personas.township_doctor,
        patient=patient,
        institution=patient.registered_at,
        title="首诊记录",
        kind="note",
        body="外旋",
    )
    form = township.get("/referrals/new/", {"patient": patient.pk})
    assert form.status_code == 200 and "up_hip_fracture_elderly" in form.content.decode()
    missing = township.post("/referrals/new/", {"patient": patient.pk, "direction": "up"})
    assert missing.status_code == 422 and not Referral.objects.exists()
    made = township.post(
        "/referrals/new/",
        {
            "patient": patient.pk,
            "direction": "up",
            "from_institution": net.tuodian.pk,
            "to_institution": net.shuangbai.pk,
            "urgency": "emergency",
            "reason": "跌倒后右髋疼痛",
            "criteria": ["up_hip_fracture_elderly"],
        },
    )
    referral = Referral.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/referrals/{referral.pk}/"
    township.post(f"/referrals/{referral.pk}/act/share/", {"item": f"document:{note.pk}"})
    township.post(f"/referrals/{referral.pk}/act/send/", {"version": referral.version})
    assert ReferralShare.objects.filter(referral=referral, object_id=note.pk).exists()
    page = county.get(f"/referrals/{referral.pk}/").content.decode()
    assert "外旋" in page and 'data-action="accept"' in page
    # an illegal move through the page: the page again with the refusal, nothing changed
    early = county.post(f"/referrals/{referral.pk}/act/complete/", {})
    assert early.status_code == 409 and Referral.objects.get().state == State.SENT
    county.post(
        f"/referrals/{referral.pk}/act/decline/",
        {"reason": "无共管条件", "onward_to": net.center.pk},
    )
    referral.refresh_from_db()
    assert referral.state == State.DECLINED
    closed = county.get(f"/referrals/{referral.pk}/").content.decode()
    assert "外旋" not in closed and 'id="shares-closed"' in closed
    outsider = signed_in_client(personas.outsider)
    assert outsider.get(f"/referrals/{referral.pk}/").status_code == 403
    assert outsider.post(f"/referrals/{referral.pk}/act/accept/").status_code == 403

    # the page in English: nothing Chinese but what people wrote and named
    township.post("/i18n/setlang/", {"language": "en"})
    body = township.get(f"/referrals/{referral.pk}/").content.decode()
    # the site header (other apps' links) is checked by the shell's own translation test
    english = _visible_text(re.sub(r"(?s)<header>.*?</header>", " ", body))
    assert "Receiving institution" in english and "Records shared with the referral" in english
    for data in (
        "杨秀英",
        "跌倒后右髋疼痛",
        "无共管条件",
        "简体中文",
        "李乡医",
        "王县医",
        "赵中心",
        "首诊记录",
        "外旋",
    ):
        english = english.replace(data, "")
    for institution in (net.tuodian, net.shuangbai, net.center):
        english = english.replace(institution.name, "")
    assert not CHINESE.search(english), CHINESE.findall(english)
    # the letter is Chinese even for an English reader
    letter = township.get(f"/referrals/{referral.pk}/letter/").content.decode()
    assert "双向转诊单" in letter and "转诊指征" in letter


@pytest.mark.parametrize("url", ["/referrals/", "/referrals/?box=outgoing", "/referrals/new/"])
def test_pages_in_english_leave_no_chinese(
    personas: Personas, signed_in_client: Callable[..., Client], url: str
) -> None:
    client = signed_in_client(personas.township_doctor)
    client.cookies["django_language"] = "en"
    body = client.get(url).content.decode()
    text = _visible_text(re.sub(r"(?s)<header>.*?</header>", " ", body))
    # institution names are data; the language switcher names Chinese in Chinese
    text = text.replace("简体中文", "")
    for name in ("双柏县人民医院", "双柏县妥甸镇卫生院", "永仁县人民医院", "楚雄州人民医院"):
        text = text.replace(name, "")
    leftover = sorted(set(CHINESE.findall(text)))
    assert "Referral" in text or "referral" in text
    stray = [ch for ch in leftover if ch not in _data_chars(personas)]
    assert stray == [], [line for line in text.splitlines() if set(line) & set(stray)]


def _data_chars(personas: Personas) -> set[str]:
    from clinical_shell.network.models import Institution, Person

    names = [i.name for i in Institution.objects.all()] + [
        p.full_name for p in Person.objects.all()
    ]
    return set("".join(names))


def test_emergency_topic_is_heard_only_by_the_receiving_team(
    shell_network: Network, personas: Personas
) -> None:
    county = f"referrals.{shell_network.shuangbai.pk}"
    assert may_hear_institution(personas.county_surgeon, county)
    assert not may_hear_institution(personas.outsider, county)
    assert not may_hear_institution(personas.township_doctor, county)


def test_emergency_is_published_to_the_receiving_team_after_commit(
    shell_network: Network,
    personas: Personas,
    patient: Patient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(services, "publish", lambda topic, event: heard.append((topic, event)))
    referral = services.create_draft(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        direction=Direction.UP,
        from_institution=shell_network.tuodian,
        to_institution=shell_network.shuangbai,
        urgency="emergency",
        reason="开放性胫骨骨折",
        criteria=["up_open_fracture_neurovascular"],
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.send(actor=personas.township_doctor, referral_id=referral.pk)
    assert heard == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert heard == [
        (
            f"referrals.{shell_network.shuangbai.pk}",
            {"kind": "emergency_referral", "referral": referral.pk},
        )
    ]
