"""The header offers only what the user may open: every link in it answers 200 for the user it
is shown to (no link that ends in a refusal), the quality page's link only for the quality office
and department heads, and the administration pages lead to the locked-accounts page."""

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.administration import services as administration


def header_links(html: str) -> dict[str, str]:
    """The header navigation's links: href -> text."""
    nav = re.search(r"<header>.*?<nav>(.*?)</nav>", html, re.S)
    assert nav, "a signed-in page has the header's navigation"
    return {
        href: re.sub(r"<[^>]+>", "", text).strip()
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', nav.group(1), re.S)
    }


@pytest.mark.parametrize(
    "who",
    [
        "township_doctor",
        "county_surgeon",
        "center_surgeon",
        "committee_member",
        "quality_manager",
        "admin",
        "radiologist",
    ],
)
def test_every_header_link_opens_for_the_user_it_is_shown_to(
    who: str, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(getattr(personas, who))
    links = header_links(client.get("/patients/").content.decode())
    assert "/patients/" in links
    for href, text in links.items():
        status = client.get(href).status_code
        assert status == 200, f"{who}: the header offers {text} ({href}), which answers {status}"


def test_the_quality_link_is_for_the_quality_office_and_department_heads(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    def offered(user: User) -> bool:
        html = signed_in_client(user).get("/patients/").content.decode()
        return "/quality/" in header_links(html)

    assert offered(personas.quality_manager)
    assert not offered(personas.county_surgeon)
    assert not offered(personas.radiologist)
    assert not offered(personas.admin)
    # named head of the county's orthopedics, the surgeon sees the link on the next page
    department = administration.create_department(
        actor=personas.admin, institution=shell_network.shuangbai, name="骨科", code="ORTHO"
    )
    administration.update_department(
        actor=personas.admin,
        department=department,
        name=department.name,
        code=department.code,
        head=personas.county_surgeon.person,
    )
    assert offered(personas.county_surgeon)
    assert signed_in_client(personas.county_surgeon).get("/quality/").status_code == 200


def test_the_administration_pages_lead_to_the_locked_accounts(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    admin = signed_in_client(personas.admin)
    index = admin.get("/administration/").content.decode()
    assert 'href="/accounts/locks/"' in index
    locks = admin.get("/accounts/locks/").content.decode()
    # and back: the locks page sits under 系统管理 in the breadcrumbs
    crumbs = re.search(r'<nav class="breadcrumbs[^"]*"[^>]*>(.*?)</nav>', locks, re.S)
    assert crumbs and 'href="/administration/"' in crumbs.group(1)
    # the quality office reads the audit log but unlocks nobody: no link to a refusal
    quality = signed_in_client(personas.quality_manager).get("/administration/").content.decode()
    assert 'href="/accounts/locks/"' not in quality


def test_the_locked_accounts_link_is_in_the_page_language(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    admin = signed_in_client(personas.admin)
    admin.cookies["django_language"] = "en"
    index = admin.get("/administration/").content.decode()
    assert ">Locked accounts</a>" in index and "被锁定" not in index
    assert "unlock here once you have checked who is asking" in index


def test_the_new_account_form_marks_its_required_fields(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    admin = signed_in_client(personas.admin)
    html = admin.get("/administration/users/new/").content.decode()
    for name, label in (("username", "用户名"), ("full_name", "姓名")):
        marked = re.search(rf'<label for="{name}">{label} <span class="error"[^>]*>\*</span>', html)
        assert marked, f"{name} is marked required"
    # the initial password may be left empty (one is generated): not marked
    assert re.search(r'<label for="password">初始密码</label>', html)
    assert 'id="required-legend"' in html
    admin.cookies["django_language"] = "en"
    assert "marks a required field." in admin.get("/administration/users/new/").content.decode()
