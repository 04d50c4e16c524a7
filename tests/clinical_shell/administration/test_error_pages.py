"""The styled error pages: 404, 403 (with the refusal's reason) and 500 (standalone, no
database), in Chinese and English, each with a way back."""

from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.utils import translation
from shell_personas import Personas

from clinical_shell.administration import error_pages
from clinical_shell.errors import PermissionDeniedError

WORDS = {
    "zh-hans": {"404": "未找到", "403": "无权访问", "500": "服务器内部错误", "home": "返回首页"},
    "en": {
        "404": "Not found",
        "403": "Access refused",
        "500": "Internal server error",
        "home": "Back to home",
    },
}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_unknown_address_gets_the_404_page_with_a_way_back(
    language: str, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get("/no-such-page/", HTTP_REFERER="http://testserver/patients/")
    html = response.content.decode()
    assert response.status_code == 404
    assert WORDS[language]["404"] in html and WORDS[language]["home"] in html
    assert 'href="/"' in html and 'href="http://testserver/patients/"' in html
    # anonymous visitors get it too, without the header's navigation
    anonymous = Client()
    anonymous.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    assert WORDS[language]["404"] in anonymous.get("/no-such-page/").content.decode()


def test_a_link_back_to_another_site_is_not_offered(personas: Personas) -> None:
    html = Client().get("/no-such-page/", HTTP_REFERER="https://evil.example/").content.decode()
    assert "evil.example" not in html


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_403_page_says_why(
    language: str, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get("/administration/audit/")
    html = response.content.decode()
    assert response.status_code == 403 and WORDS[language]["403"] in html
    reason = "Only administrators and quality managers of the prefecture center"
    assert (reason if language == "en" else "只有州级中心的系统管理员和质控管理员") in html
    assert WORDS[language]["home"] in html


def test_the_403_handler_carries_a_reason_when_the_refusal_has_one(personas: Personas) -> None:
    request = RequestFactory().get("/somewhere/")
    request.user = personas.county_surgeon
    with translation.override("zh-hans"):
        refused = error_pages.permission_denied(
            request, PermissionDeniedError("no", "只有科主任可以关闭预警")
        )
        plain = error_pages.permission_denied(request, PermissionDenied())
    assert refused.status_code == 403 and "只有科主任可以关闭预警" in refused.content.decode()
    assert "你没有访问此页面的权限" in plain.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_500_page_renders_without_a_database_or_request_context(language: str) -> None:
    # no `db` fixture: any query here would fail the test
    request = RequestFactory().get("/boom/", HTTP_REFERER="http://testserver/patients/")
    with translation.override(language):
        response = error_pages.server_error(request)
    html = response.content.decode()
    assert response.status_code == 500
    assert WORDS[language]["500"] in html and WORDS[language]["home"] in html
    assert 'href="/"' in html and 'href="http://testserver/patients/"' in html
    assert (language == "en") == ('lang="en"' in html)
