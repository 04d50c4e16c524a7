"""Account administration: create, deactivate, reset, unlock, roles; scope (the center's
administrator manages everyone, a county administrator only its own institution's accounts);
every action audited; a temporary password is shown once and never written to the log."""

import json
import logging
import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings
from shell_personas import PERSONA_PASSWORD, Network, Personas, make_persona

from clinical_shell.accounts import signin
from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.accounts.throttle import account_key
from clinical_shell.administration import services
from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import PermissionDeniedError
from clinical_shell.network.models import Membership, Role

SIGN_IN = "/accounts/sign-in/"


@pytest.fixture
def county_admin(personas: Personas, shell_network: Network) -> User:
    user: User = make_persona(
        "he.sbadmin", "何管理", "none", (shell_network.shuangbai, Role.ADMINISTRATOR)
    )
    return user


def _shown_password(html: str) -> str:
    found = re.search(r'id="temporary-password"[^>]*>([^<]+)<', html)
    assert found, "the temporary password is shown"
    return found.group(1)


def _log_text() -> str:
    return json.dumps(
        list(AuditEvent.objects.values("action", "reason", "detail", "target_id")),
        ensure_ascii=False,
    )


def _sign_in(username: str, password: str, ip: str = "10.20.0.1") -> int:
    return (
        Client().post(SIGN_IN, {"username": username, "password": password}, REMOTE_ADDR=ip)
    ).status_code


def test_an_administrator_creates_an_account_with_a_generated_password_shown_once(
    personas: Personas,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = signed_in_client(personas.admin)
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/administration/users/new/",
        {
            "username": "xu.nurse",
            "full_name": "徐护士",
            "title": "nurse",
            "institution": shell_network.shuangbai.pk,
            "role": Role.NURSE,
            "password": "",
        },
    )
    assert response.status_code == 200
    password = _shown_password(response.content.decode())
    user = User.objects.get(username="xu.nurse")
    assert user.check_password(password)
    assert Membership.objects.filter(person__user=user, role=Role.NURSE, active=True).exists()
    created = AuditEvent.objects.get(action="admin.account_create")
    assert created.actor_user_id == personas.admin.pk and created.target_id == str(user.pk)
    # the password is in no audit event and in no log record
    assert password not in _log_text() and password not in caplog.text
    # the owner signs in with it (and is asked to change it)
    assert _sign_in("xu.nurse", password) == 302
    # the same name twice is refused, nothing created
    again = client.post(
        "/administration/users/new/",
        {
            "username": "xu.nurse",
            "full_name": "徐护士",
            "institution": shell_network.shuangbai.pk,
            "role": Role.NURSE,
        },
    )
    assert again.status_code == 422 and User.objects.filter(username="xu.nurse").count() == 1


def test_a_chosen_weak_password_is_refused(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    response = signed_in_client(personas.admin).post(
        "/administration/users/new/",
        {
            "username": "weak.one",
            "full_name": "弱密码",
            "institution": shell_network.center.pk,
            "role": Role.SURGEON,
            "password": "12345",
        },
    )
    assert response.status_code == 422
    assert not User.objects.filter(username="weak.one").exists()


def test_deactivation_asks_first_then_the_account_cannot_sign_in_until_reactivated(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    target = personas.county_surgeon
    url = f"/administration/users/{target.pk}/deactivate/"
    confirm = client.get(url)
    assert confirm.status_code == 200 and "确认" in confirm.content.decode()
    target.refresh_from_db()
    assert target.is_active  # the confirmation page changes nothing
    assert client.post(url).status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    assert _sign_in(target.username, PERSONA_PASSWORD) != 302
    assert AuditEvent.objects.filter(
        action="admin.account_deactivate", target_id=str(target.pk)
    ).exists()
    assert client.post(f"/administration/users/{target.pk}/reactivate/").status_code == 302
    assert _sign_in(target.username, PERSONA_PASSWORD, ip="10.20.0.2") == 302
    assert AuditEvent.objects.filter(action="admin.account_reactivate").exists()


def test_a_password_reset_shows_a_temporary_password_never_logged(
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = signed_in_client(personas.admin)
    target = personas.township_doctor
    url = f"/administration/users/{target.pk}/reset-password/"
    assert client.get(url).status_code == 200
    target.refresh_from_db()
    assert target.check_password(PERSONA_PASSWORD)  # not yet
    caplog.set_level(logging.DEBUG)
    response = client.post(url)
    password = _shown_password(response.content.decode())
    target.refresh_from_db()
    assert target.check_password(password) and not target.check_password(PERSONA_PASSWORD)
    assert AuditEvent.objects.filter(action="auth.password_reset", target_id=str(target.pk))
    assert password not in _log_text() and password not in caplog.text


def test_an_account_locked_by_failed_sign_ins_is_unlocked_and_can_sign_in(
    personas: Personas, settings: Settings, signed_in_client: Callable[[User], Client]
) -> None:
    settings.OSTEON_SIGNIN_LOCK_FAILURES = 3
    settings.OSTEON_SIGNIN_MAX_DELAY_S = 0
    target = personas.outsider  # 永仁 only: the center's administrator still manages them
    for _ in range(3):
        _sign_in(target.username, "wrong-password-1", ip="10.21.0.1")
    assert _sign_in(target.username, PERSONA_PASSWORD, ip="10.21.0.2") == 423
    client = signed_in_client(personas.admin)
    listed = client.get("/administration/users/", {"locked": "yes"}).content.decode()
    assert target.username in listed and personas.county_surgeon.username not in listed
    assert client.post(f"/administration/users/{target.pk}/unlock/").status_code == 302
    assert not SignInThrottle.objects.filter(key=account_key(target.username)).exists()
    assert signin.check_sign_in(username=target.username, password=PERSONA_PASSWORD) == target
    assert _sign_in(target.username, PERSONA_PASSWORD, ip="10.21.0.3") == 302
    assert AuditEvent.objects.filter(
        action="auth.account_unlock", target_id=str(target.pk), outcome="success"
    ).exists()


def test_a_county_administrator_manages_only_its_own_institution(
    personas: Personas,
    shell_network: Network,
    county_admin: User,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(county_admin)
    # its own county surgeon: yes
    listed = client.get("/administration/users/").content.decode()
    assert personas.county_surgeon.username in listed
    assert personas.center_surgeon.username not in listed
    # a center account: refused with the reason, unchanged, audited
    response = client.post(f"/administration/users/{personas.center_surgeon.pk}/deactivate/")
    assert response.status_code == 403 and "州级中心" in response.content.decode()
    personas.center_surgeon.refresh_from_db()
    assert personas.center_surgeon.is_active
    assert AuditEvent.objects.filter(
        actor_user_id=county_admin.pk, action="request.refused", outcome="failure"
    ).exists()
    with pytest.raises(PermissionDeniedError):
        services.reset_password(actor=county_admin, user=personas.admin)
    # no role at an institution it does not administer
    with pytest.raises(PermissionDeniedError):
        services.add_role(
            actor=county_admin,
            user=personas.county_surgeon,
            institution=shell_network.center,
            role=Role.SURGEON,
        )
    assert (
        client.post(f"/administration/users/{personas.county_surgeon.pk}/deactivate/").status_code
        == 302
    )


def test_roles_are_added_and_ended_and_audited(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    target = personas.county_surgeon
    added = client.post(
        f"/administration/users/{target.pk}/roles/",
        {"institution": shell_network.tuodian.pk, "role": Role.TOWNSHIP_DOCTOR},
    )
    assert added.status_code == 302
    membership = Membership.objects.get(person__user=target, institution=shell_network.tuodian)
    assert membership.active
    client.post(f"/administration/users/{target.pk}/roles/{membership.pk}/remove/")
    membership.refresh_from_db()
    assert not membership.active
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"admin.role_add", "admin.role_remove"} <= actions


def test_people_who_are_not_administrators_are_refused(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    for user in (personas.county_surgeon, personas.quality_manager):
        client = signed_in_client(user)
        response = client.get("/administration/users/")
        assert response.status_code == 403 and "系统管理员" in response.content.decode()
        assert (
            client.post(f"/administration/users/{personas.outsider.pk}/deactivate/").status_code
            == 403
        )
    personas.outsider.refresh_from_db()
    assert personas.outsider.is_active
    api = signed_in_client(personas.county_surgeon).get("/api/v1/administration/users")
    assert api.status_code == 403 and api.json()["code"] == "not_administrator"


def test_the_api_creates_and_resets_with_the_password_in_the_answer_only(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    created = client.post(
        "/api/v1/administration/users",
        {
            "username": "api.user",
            "full_name": "接口用户",
            "institution_id": shell_network.center.pk,
            "role": Role.RESIDENT,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    user = User.objects.get(username="api.user")
    assert user.check_password(body["temporary_password"])
    reset = client.post(f"/api/v1/administration/users/{user.pk}/reset-password")
    assert reset.status_code == 200
    assert user.__class__.objects.get(pk=user.pk).check_password(reset.json()["temporary_password"])
    assert body["temporary_password"] not in _log_text()
    assert reset.json()["temporary_password"] not in _log_text()
    unlock = client.post(f"/api/v1/administration/users/{user.pk}/unlock")
    assert unlock.status_code == 409 and unlock.json()["code"] == "not_locked"


def test_a_department_gets_a_new_name_and_a_head_from_the_institutions_members(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    url = f"/administration/institutions/{shell_network.shuangbai.pk}/"
    assert client.post(url, {"code": "ortho", "name": "骨科"}).status_code == 302
    department = shell_network.shuangbai.departments.get(code="ORTHO")
    edit = f"/administration/departments/{department.pk}/"
    # someone who does not work there cannot head it
    outsider = personas.outsider.person
    refused = client.post(edit, {"name": "骨科", "code": "ORTHO", "head": outsider.pk})
    assert refused.status_code == 422
    department.refresh_from_db()
    assert department.head_id is None
    head = personas.county_surgeon.person
    ok = client.post(edit, {"name": "骨一科", "code": "ORTHO", "head": head.pk})
    assert ok.status_code == 302
    department.refresh_from_db()
    assert (department.name, department.head_id) == ("骨一科", head.pk)
    assert AuditEvent.objects.filter(
        action="admin.department_update", target_id=str(department.pk)
    ).exists()


def test_the_header_links_administration_for_administrators_and_the_quality_office(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    link = 'href="/administration/"'
    for user, shown in (
        (personas.admin, True),
        (personas.quality_manager, True),
        (personas.county_surgeon, False),
    ):
        assert (link in signed_in_client(user).get("/patients/").content.decode()) is shown
    # a role given here shows the link on the next page, without waiting for the cache
    client = signed_in_client(personas.county_surgeon)
    services.add_role(
        actor=personas.admin,
        user=personas.county_surgeon,
        institution=shell_network.shuangbai,
        role=Role.ADMINISTRATOR,
    )
    assert link in client.get("/patients/").content.decode()
