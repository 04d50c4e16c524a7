"""Editing institutions in administration: every error at once, history from the audit log, the
center's administrators edit any institution and its place in the network, a county administrator
only its own institution's names and position; the quality map draws the edited position."""

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas, make_persona

from clinical_shell.administration import services
from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Institution, Role
from clinical_shell.quality.dashboard import network_map


@pytest.fixture
def county_admin(personas: Personas, shell_network: Network) -> User:
    user: User = make_persona(
        "he.sbadmin", "何管理", "none", (shell_network.shuangbai, Role.ADMINISTRATOR)
    )
    return user


def _form(institution: Institution, **changes: Any) -> dict[str, Any]:
    """The edit form as the page posts it, with `changes` applied."""
    data: dict[str, Any] = {
        "name": institution.name,
        "name_en": institution.name_en,
        "level": institution.level,
        "county": institution.county,
        "parent_id": institution.parent_id or "",
        "longitude": "" if institution.longitude is None else institution.longitude,
        "latitude": "" if institution.latitude is None else institution.latitude,
    }
    if institution.active:
        data["active"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _edit_url(institution: Institution) -> str:
    return f"/administration/institutions/{institution.pk}/edit/"


def test_the_center_administrator_edits_an_institution_and_the_page_shows_its_history(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    yongren = shell_network.yongren
    response = client.post(
        _edit_url(yongren),
        _form(
            yongren,
            name="永仁县人民医院（新院区）",
            name_en="Yongren County People's Hospital",
            longitude="101.68",
            latitude="26.06",
        ),
    )
    assert response.status_code == 302
    yongren.refresh_from_db()
    assert yongren.name == "永仁县人民医院（新院区）"
    assert yongren.name_en == "Yongren County People's Hospital"
    assert (yongren.longitude, yongren.latitude) == (101.68, 26.06)
    event = AuditEvent.objects.get(action="admin.institution_update")
    assert event.actor_user_id == personas.admin.pk and event.target_id == str(yongren.pk)
    assert event.detail["before"] == {
        "name": "永仁县人民医院",
        "name_en": "",
        "longitude": None,
        "latitude": None,
    }
    assert event.detail["after"]["longitude"] == 101.68
    # the institution page lists the change, field by field
    page = client.get(f"/administration/institutions/{yongren.pk}/").content.decode()
    history = page[page.index('id="institution-history"') :]
    assert "永仁县人民医院 → 永仁县人民医院（新院区）" in history
    assert "— → 101.68" in history
    # on English pages the English name is shown
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/administration/institutions/").content.decode()
    assert "Yongren County People&#x27;s Hospital" in english


def test_all_errors_are_shown_at_once_and_nothing_changes(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    tuodian = shell_network.tuodian
    response = client.post(
        _edit_url(tuodian),
        _form(
            tuodian,
            name="",
            county="",
            longitude="not a number",
            latitude="95",
            parent_id=shell_network.center.pk,  # a township centre hangs under a county hospital
        ),
    )
    assert response.status_code == 422
    html = response.content.decode()
    for field in ("name", "county", "longitude", "latitude", "parent_id"):
        assert f'id="id_{field}-errors"' in html, field
    assert "请填写机构名称" in html and "纬度须在 -90 到 90 之间" in html
    assert "上级机构须是一家县级医院" in html
    tuodian.refresh_from_db()
    assert tuodian.name == "双柏县妥甸镇卫生院" and tuodian.parent_id == shell_network.shuangbai.pk
    assert not AuditEvent.objects.filter(action="admin.institution_update").exists()


def test_network_rules_hold_for_the_center_administrator(
    personas: Personas, shell_network: Network
) -> None:
    n = shell_network

    def change(institution: Institution, **fields: Any) -> services.InstitutionChange:
        return replace(services.InstitutionChange.of(institution), **fields)

    def errors(institution: Institution, **fields: Any) -> dict[str, str]:
        return services.institution_errors(
            actor=personas.admin, institution=institution, change=change(institution, **fields)
        )

    # nothing becomes a second center, and the center stays one
    assert "level" in errors(n.yongren, level="center", parent_id=None)
    assert "level" in errors(n.center, level="county", parent_id=None)
    # a county hospital with an open township centre under it stays open; the center too
    assert "active" in errors(n.shuangbai, active=False)
    assert "active" in errors(n.center, active=False)
    assert errors(n.yongren, active=False) == {}
    # both coordinates or neither
    assert "latitude" in errors(n.yongren, longitude=101.5, latitude=None)
    # a township centre may be moved under another county hospital
    services.update_institution(
        actor=personas.admin,
        institution=n.tuodian,
        change=change(n.tuodian, parent_id=n.yongren.pk),
    )
    n.tuodian.refresh_from_db()
    assert n.tuodian.parent_id == n.yongren.pk


def test_a_county_administrator_edits_only_its_own_institution_and_not_its_place(
    county_admin: User,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(county_admin)
    yongren, shuangbai = shell_network.yongren, shell_network.shuangbai
    # another county's institution: refused with the reason, unchanged
    response = client.post(_edit_url(yongren), _form(yongren, name="改名"))
    assert response.status_code == 403
    assert "你不是该机构的管理员" in response.content.decode()
    yongren.refresh_from_db()
    assert yongren.name == "永仁县人民医院"
    # its own: names and position yes; level, county, parent and active flag are not its to change
    response = client.post(
        _edit_url(shuangbai),
        _form(shuangbai, name_en="Shuangbai County Hospital", level="township", active=None),
    )
    assert response.status_code == 302
    shuangbai.refresh_from_db()
    assert shuangbai.name_en == "Shuangbai County Hospital"
    assert shuangbai.level == "county" and shuangbai.active  # disabled fields keep their value
    before = services.InstitutionChange.of(shuangbai)
    with pytest.raises(services.InstitutionInvalidError) as refused:
        services.update_institution(
            actor=county_admin,
            institution=shuangbai,
            change=replace(before, level="center"),
        )
    assert "州级中心的管理员" in refused.value.errors["level"]
    shuangbai.refresh_from_db()
    assert shuangbai.level == "county"


def test_people_who_are_not_administrators_get_403_with_the_reason(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    for url in (
        "/administration/institutions/",
        _edit_url(shell_network.shuangbai),
        "/administration/stations/",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "只有系统管理员可以管理账户、机构和科室" in response.content.decode()
    with pytest.raises(PermissionDeniedError):
        services.update_institution(
            actor=personas.county_surgeon,
            institution=shell_network.shuangbai,
            change=services.InstitutionChange.of(shell_network.shuangbai),
        )


def test_an_inactive_institution_gets_no_new_accounts(
    personas: Personas, shell_network: Network
) -> None:
    yongren = shell_network.yongren
    services.update_institution(
        actor=personas.admin,
        institution=yongren,
        change=replace(services.InstitutionChange.of(yongren), active=False),
    )
    yongren.refresh_from_db()
    with pytest.raises(DomainError) as refused:
        services.create_account(
            actor=personas.admin,
            username="new.one",
            full_name="新人",
            institution=yongren,
            role=Role.NURSE,
        )
    assert refused.value.code == "institution_inactive"


def test_the_quality_map_draws_an_institution_at_the_position_set_here(
    personas: Personas, shell_network: Network
) -> None:
    yongren = shell_network.yongren
    services.update_institution(
        actor=personas.admin,
        institution=yongren,
        change=replace(services.InstitutionChange.of(yongren), longitude=101.7, latitude=26.1),
    )
    placed, _unplaced, _frame = network_map(date(2026, 11, 1))
    point = next(p for p in placed if p.institution.pk == yongren.pk)
    assert (point.longitude, point.latitude) == (101.7, 26.1)


def _new_form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "CX-SB-DMZ",
        "name": "双柏县大麦地镇卫生院",
        "name_en": "Damaidi Township Health Center",
        "level": Institution.Level.TOWNSHIP,
        "county": "双柏县",
        "longitude": "101.46",
        "latitude": "24.60",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_center_administrator_adds_a_township_centre_under_its_county_hospital(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    page = client.get("/administration/institutions/")
    assert b'id="new-institution"' in page.content
    response = client.post(
        "/administration/institutions/new/",
        _new_form(parent_id=shell_network.shuangbai.pk),
    )
    assert response.status_code == 302
    created = Institution.objects.get(code="CX-SB-DMZ")
    assert response["Location"] == f"/administration/institutions/{created.pk}/"
    assert created.parent_id == shell_network.shuangbai.pk and created.active
    assert (created.longitude, created.latitude) == (101.46, 24.60)
    event = AuditEvent.objects.get(action="network.institution_create", target_id=str(created.pk))
    assert event.actor_user_id == personas.admin.pk
    assert event.detail["after"]["name"] == "双柏县大麦地镇卫生院"
    # its page's history starts with the values it was created with
    history = client.get(f"/administration/institutions/{created.pk}/").context["history"]
    assert history[0].created and "双柏县人民医院" in {c.after for c in history[0].changes}


def test_a_new_institution_with_problems_shows_them_all_and_nothing_is_created(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    before = Institution.objects.count()
    audited_before = AuditEvent.objects.filter(action="network.institution_create").count()
    response = client.post(
        "/administration/institutions/new/",
        _new_form(
            code=shell_network.tuodian.code.lower(),  # taken, whatever its case
            name="",
            parent_id=shell_network.center.pk,  # a township centre hangs under a county hospital
            longitude="181",
            latitude="",
        ),
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert set(form.errors) >= {"code", "name", "parent_id", "longitude", "latitude"}
    assert "已被使用" in str(form.errors["code"])
    # a second center is refused however it is asked for
    second = client.post(
        "/administration/institutions/new/", _new_form(code="CX-C2", level="center")
    )
    assert second.status_code == 422 and "level" in second.context["form"].errors
    bad_code = client.post("/administration/institutions/new/", _new_form(code="中心 01"))
    assert bad_code.status_code == 422 and "code" in bad_code.context["form"].errors
    assert Institution.objects.count() == before
    assert AuditEvent.objects.filter(action="network.institution_create").count() == (
        audited_before
    )


def test_only_the_center_administrator_adds_institutions(
    personas: Personas,
    shell_network: Network,
    county_admin: User,
    signed_in_client: Callable[[User], Client],
) -> None:
    before = Institution.objects.count()
    client = signed_in_client(county_admin)
    assert b'id="new-institution"' not in client.get("/administration/institutions/").content
    for user in (county_admin, personas.county_surgeon):
        client = signed_in_client(user)
        assert client.get("/administration/institutions/new/").status_code == 403
        response = client.post(
            "/administration/institutions/new/", _new_form(parent_id=shell_network.shuangbai.pk)
        )
        assert response.status_code == 403
    with pytest.raises(PermissionDeniedError):
        services.create_institution(
            actor=county_admin,
            code="CX-X",
            change=services.InstitutionChange.of(shell_network.tuodian),
        )
    assert Institution.objects.count() == before
