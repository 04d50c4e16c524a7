"""Booking operations against privileges and licences: refusals with their exact reason, the
emergency override and its quality review, flags when a privilege lapses, who sees what."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.credentialing import services as credentialing
from clinical_shell.credentialing.models import Privilege, Technique
from clinical_shell.network.models import Role
from clinical_shell.notifications.models import Notification
from clinical_shell.records.models import Patient
from clinical_shell.scheduling import selectors, services
from clinical_shell.scheduling.models import Booking

pytestmark = pytest.mark.django_db

API = "/api/v1/scheduling"


@dataclass(frozen=True)
class Scene:
    network: Network
    personas: Personas
    patient: Patient
    privilege: Privilege
    quality: User  # quality manager at 双柏
    client: Client  # the county surgeon, signed in


@pytest.fixture
def scene(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> Scene:
    today = timezone.localdate()
    credentialing.set_institution_licence(
        actor=None, institution=shell_network.shuangbai, hospital_grade=2, max_surgical_grade=3
    )
    privilege = credentialing.grant_privilege(
        actor=None,
        surgeon=personas.county_surgeon,
        institution=shell_network.shuangbai,
        technique=None,
        grade=3,
        valid_from=today - timedelta(days=30),
        valid_until=today + timedelta(days=365),
    )
    quality = make_persona(
        "feng.quality", "冯质控", "none", (shell_network.shuangbai, Role.QUALITY_MANAGER)
    )
    return Scene(
        shell_network,
        personas,
        patient_in_shuangbai,
        privilege,
        quality,
        signed_in_client(personas.county_surgeon),
    )


def _payload(scene: Scene, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "patient_id": scene.patient.pk,
        "procedure_name": "股骨颈骨折空心钉内固定术",
        "procedure_code": "79.35",
        "grade": 3,
        "surgeon_id": scene.personas.county_surgeon.pk,
        "institution_id": scene.network.shuangbai.pk,
        "scheduled_on": (timezone.localdate() + timedelta(days=3)).isoformat(),
    }
    payload.update(changes)
    return payload


def _book(scene: Scene, **changes: Any) -> Any:
    return scene.client.post(API, _payload(scene, **changes), content_type="application/json")


def test_it_books_an_operation_the_privilege_covers(scene: Scene) -> None:
    response = _book(scene)
    assert response.status_code == 201, response.content
    booking = Booking.objects.get(pk=response.json()["id"])
    assert booking.state == Booking.State.BOOKED
    assert booking.grade_privilege_id == scene.privilege.pk
    assert not booking.emergency_override
    assert AuditEvent.objects.filter(
        action="booking.create", target_id=str(booking.pk), patient_id=scene.patient.pk
    ).exists()


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        # the institution may do grade 3 at most: no surgeon can do grade 4 there
        ({"grade": 4}, "institution_grade_too_low", "最高可开展3级手术"),
        # 双柏 has not filed the restricted technique
        ({"technique_code": "allograft-msk"}, "technique_not_filed", "未备案"),
    ],
)
def test_it_refuses_what_the_institution_is_not_licensed_for(
    scene: Scene, change: dict[str, Any], code: str, words: str
) -> None:
    response = _book(scene, **change)
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == code
    assert words in problem["detail"]
    assert not Booking.objects.exists()
    refusal = AuditEvent.objects.get(action="booking.refused")
    assert refusal.outcome == AuditEvent.Outcome.FAILURE
    assert refusal.detail["code"] == code


def test_it_refuses_a_grade_above_the_surgeons_privilege(scene: Scene) -> None:
    credentialing.set_institution_licence(
        actor=None, institution=scene.network.shuangbai, hospital_grade=3, max_surgical_grade=4
    )
    response = _book(scene, grade=4)
    assert response.status_code == 409
    assert response.json()["code"] == "grade_too_low"
    assert "最高授权为3级手术" in response.json()["detail"]


def test_it_refuses_after_the_privilege_expired_with_the_date(scene: Scene) -> None:
    expires = timezone.localdate() + timedelta(days=2)
    Privilege.objects.filter(pk=scene.privilege.pk).update(valid_until=expires)
    response = _book(scene)  # three days from now
    assert response.status_code == 409
    assert response.json()["code"] == "privilege_expired"
    assert expires.isoformat() in response.json()["detail"]


def test_a_surgeon_without_a_role_there_is_a_field_error(scene: Scene) -> None:
    response = _book(scene, surgeon_id=scene.personas.outsider.pk)
    assert response.status_code == 422
    assert response.json()["code"] == "booking_invalid"


def test_an_emergency_override_needs_a_reason_and_goes_to_quality_review(scene: Scene) -> None:
    without = _book(scene, grade=4, emergency_override=True, override_reason="  ")
    assert without.status_code == 422
    assert not Booking.objects.exists()

    response = _book(
        scene, grade=4, emergency_override=True, override_reason="开放性骨盆骨折大出血，无法转院"
    )
    assert response.status_code == 201, response.content
    booking = Booking.objects.get(pk=response.json()["id"])
    assert booking.emergency_override
    assert booking.overridden_code == "institution_grade_too_low"
    assert booking.override_reason == "开放性骨盆骨折大出血，无法转院"
    assert AuditEvent.objects.filter(
        action="booking.emergency_override", target_id=str(booking.pk)
    ).exists()
    since = timezone.now() - timedelta(hours=1)
    assert list(selectors.overrides(since)) == [booking]
    assert list(selectors.overrides(since, institution=scene.network.yongren.pk)) == []
    assert Notification.objects.filter(recipient=scene.quality, kind="scheduling.override").exists()


def test_the_quality_office_sees_overrides_without_the_patient(
    scene: Scene, signed_in_client: Callable[[User], Client]
) -> None:
    _book(scene, grade=4, emergency_override=True, override_reason="开放性骨盆骨折大出血")
    page = signed_in_client(scene.quality).get("/scheduling/overrides/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "开放性骨盆骨折大出血" in html
    assert scene.patient.name not in html
    api = signed_in_client(scene.quality).get(f"{API}/overrides")
    assert [row["override_reason"] for row in api.json()["items"]] == ["开放性骨盆骨折大出血"]
    assert "patient_id" not in api.json()["items"][0]
    # a surgeon is not the quality office
    assert scene.client.get("/scheduling/overrides/").status_code == 403


def test_a_prohibited_technique_cannot_be_overridden(scene: Scene) -> None:
    Technique.objects.create(
        code="banned-thing", name="禁止技术", category=Technique.Category.PROHIBITED
    )
    response = _book(
        scene, technique_code="banned-thing", emergency_override=True, override_reason="急诊"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "technique_prohibited"
    assert not Booking.objects.exists()


def test_revocation_flags_bookings_not_performed_and_the_next_booking_is_refused(
    scene: Scene,
) -> None:
    done = Booking.objects.get(pk=_book(scene).json()["id"])
    services.mark_performed(actor=scene.personas.county_surgeon, booking=done)
    pending = Booking.objects.get(pk=_book(scene).json()["id"])

    # revoking is enough: scheduling follows the privilege's save
    credentialing.revoke_privilege(
        actor=_admin_of(scene), privilege=scene.privilege, reason="术后严重并发症"
    )

    pending.refresh_from_db()
    done.refresh_from_db()
    assert pending.state == Booking.State.FLAGGED
    assert (pending.flag_code, pending.flag_reason) == ("privilege_revoked", "术后严重并发症")
    assert done.state == Booking.State.PERFORMED
    assert Notification.objects.filter(
        recipient=scene.personas.county_surgeon, kind="scheduling.flag"
    ).exists()
    assert AuditEvent.objects.filter(action="booking.flag", target_id=str(pending.pk)).exists()
    refused = _book(scene)
    assert refused.status_code == 409
    assert refused.json()["code"] == "privilege_revoked"
    # the flag shows on the list and on the booking
    listing = scene.client.get("/scheduling/?state=flagged").content.decode()
    assert f">#{pending.pk}<" in listing and "术后严重并发症" in listing
    assert f">#{done.pk}<" not in listing


def test_a_booking_another_privilege_still_covers_is_not_flagged(scene: Scene) -> None:
    booking = Booking.objects.get(pk=_book(scene).json()["id"])
    other = credentialing.grant_privilege(
        actor=None,
        surgeon=scene.personas.county_surgeon,
        institution=scene.network.shuangbai,
        technique=None,
        grade=3,
        valid_from=timezone.localdate(),
        valid_until=timezone.localdate() + timedelta(days=700),
    )
    credentialing.suspend_privilege(
        actor=_admin_of(scene), privilege=scene.privilege, reason="暂停复核"
    )
    booking.refresh_from_db()
    assert booking.state == Booking.State.BOOKED
    assert booking.grade_privilege_id == other.pk


def test_the_daily_sweep_flags_bookings_a_shortened_privilege_no_longer_covers(
    scene: Scene,
) -> None:
    booking = Booking.objects.get(pk=_book(scene).json()["id"])
    kept = Booking.objects.get(
        pk=_book(scene, scheduled_on=(timezone.localdate() + timedelta(days=1)).isoformat()).json()[
            "id"
        ]
    )
    # re-credentialing moved the expiry before the first operation's date
    Privilege.objects.filter(pk=scene.privilege.pk).update(
        valid_until=timezone.localdate() + timedelta(days=2)
    )
    assert services.flag_lapsed_bookings() == [booking.pk]
    booking.refresh_from_db()
    kept.refresh_from_db()
    assert booking.state == Booking.State.FLAGGED
    assert booking.flag_code == "privilege_expired"
    assert kept.state == Booking.State.BOOKED


def test_bookings_are_seen_only_by_those_who_may_see_the_patient(
    scene: Scene, signed_in_client: Callable[[User], Client]
) -> None:
    booking_id = _book(scene).json()["id"]
    outsider = signed_in_client(scene.personas.outsider)
    assert outsider.get(f"{API}/{booking_id}").status_code == 403
    assert outsider.get(API).json()["items"] == []
    assert f">#{booking_id}<" not in outsider.get("/scheduling/").content.decode()
    assert AuditEvent.objects.filter(
        action="patient.read", outcome=AuditEvent.Outcome.FAILURE, patient_id=scene.patient.pk
    ).exists()
    # the radiologist reads the record, writes none: sees the booking, cannot book or cancel
    radiologist = signed_in_client(scene.personas.radiologist)
    assert radiologist.get(f"{API}/{booking_id}").status_code == 200
    cancel = radiologist.post(
        f"{API}/{booking_id}/cancel", {"reason": "x"}, content_type="application/json"
    )
    assert cancel.status_code == 403
    assert (
        radiologist.post(API, _payload(scene), content_type="application/json").status_code == 403
    )


def test_the_booking_list_pages_and_its_query_count_is_fixed(
    scene: Scene, django_assert_max_num_queries: Any
) -> None:
    for days in range(1, 26):
        _book(scene, scheduled_on=(timezone.localdate() + timedelta(days=days)).isoformat())
    # the first page after sign-in also asks whether to show the administration link (cached)
    scene.client.get("/scheduling/?page=2")
    with django_assert_max_num_queries(14):
        first = scene.client.get("/scheduling/")
    assert first.status_code == 200
    assert first.content.decode().count('class="booking-row') == 20
    second = scene.client.get("/scheduling/?page=2")
    assert second.content.decode().count('class="booking-row') == 5
    with django_assert_max_num_queries(14):
        api = scene.client.get(f"{API}?page=2")
    assert api.json()["count"] == 25 and len(api.json()["items"]) == 5


def test_the_booking_form_shows_the_refusal_at_once_and_books_when_allowed(scene: Scene) -> None:
    form = {
        "patient": scene.patient.pk,
        "institution": scene.network.shuangbai.pk,
        "surgeon": scene.personas.county_surgeon.pk,
        "procedure_name": "全髋关节置换术",
        "grade": 4,
        "technique_code": "",
        "scheduled_on": (timezone.localdate() + timedelta(days=2)).isoformat(),
    }
    refused = scene.client.post("/scheduling/new/", form)
    assert refused.status_code == 409
    assert "最高可开展3级手术" in refused.content.decode()
    booked = scene.client.post("/scheduling/new/", {**form, "grade": 3})
    assert booked.status_code == 302
    detail = scene.client.get(booked["Location"])
    assert "全髋关节置换术" in detail.content.decode()


def _admin_of(scene: Scene) -> User:
    admin: User = make_persona(
        "chu.admin", "褚管理", "none", (scene.network.shuangbai, Role.ADMINISTRATOR)
    )
    return admin


def test_cancelled_bookings_keep_their_reason(scene: Scene) -> None:
    booking_id = _book(scene).json()["id"]
    missing = scene.client.post(
        f"{API}/{booking_id}/cancel", {"reason": " "}, content_type="application/json"
    )
    assert missing.status_code == 422
    done = scene.client.post(
        f"{API}/{booking_id}/cancel", {"reason": "患者转上级医院"}, content_type="application/json"
    )
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    again = scene.client.post(
        f"{API}/{booking_id}/cancel", {"reason": "再取消"}, content_type="application/json"
    )
    assert again.status_code == 409


def test_the_form_asks_before_booking_and_hears_the_same_answer(
    scene: Scene, signed_in_client: Callable[[User], Client]
) -> None:
    on = (timezone.localdate() + timedelta(days=3)).isoformat()
    base = (
        f"{API}/check?surgeon_id={scene.personas.county_surgeon.pk}"
        f"&institution_id={scene.network.shuangbai.pk}&on={on}"
    )
    allowed = scene.client.get(base + "&grade=3").json()
    assert (allowed["ok"], allowed["code"]) == (True, "ok")
    refused = scene.client.get(base + "&grade=4").json()
    assert (refused["ok"], refused["code"], refused["overridable"]) == (
        False,
        "institution_grade_too_low",
        True,
    )
    assert refused["reason"] == _book(scene, grade=4).json()["detail"]
    # only someone who books there may ask
    assert signed_in_client(scene.personas.outsider).get(base + "&grade=3").status_code == 403
    assert not Booking.objects.exists()
