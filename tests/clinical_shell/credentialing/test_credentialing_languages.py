"""Training and credentialing pages show only the reader's language (data aside)."""

import re
from collections.abc import Callable
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from credentialing_board import Board
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network
from training_scores import score_row

from clinical_shell.credentialing import services
from clinical_shell.training import services as training

CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
TECHNICAL_WORDS = {"HMAC", "SHA", "L4"}


class _Visible(HTMLParser):
    HIDDEN = frozenset({"script", "style", "code"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in self.HIDDEN
        self.parts += [v for k, v in attrs if k in ("placeholder", "aria-label", "title") and v]

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in self.HIDDEN

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def _other_language(html: str, language: str, data: set[str]) -> list[str]:
    parser = _Visible()
    parser.feed(html.split("<main>", 1)[1])  # the header belongs to the shell's own check
    text = "\n".join(parser.parts)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, "␣")
    if language == "en":
        hits = [m.start() for m in CHINESE.finditer(text)]
    else:
        hits = [m.start() for m in ENGLISH_WORD.finditer(text) if m.group() not in TECHNICAL_WORDS]
    return [text[max(0, i - 15) : i + 15] for i in hits]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_shows_only_its_language(
    board: Board,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
    language: str,
) -> None:
    for _ in range(2):
        score_row(board.station, board.applicant, score=88.0)
    application = services.submit_application(
        actor=board.applicant,
        requirement=board.requirement,
        institution=shell_network.center,
        statement="申请",
    )
    services.cast_vote(actor=board.members[0], application=application, approve=True, comment="好")
    services.grant_privilege(
        actor=None,
        surgeon=board.members[1],
        institution=shell_network.center,
        technique=None,
        grade=3,
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 1, 1),
    )
    group = training.create_group(
        actor=None,
        name="骨科组",
        institution=shell_network.center,
        instructors=[board.chair],
        trainees=[board.applicant],
    )
    training.assign_module(
        actor=board.chair,
        module=board.module,
        trainee=board.applicant,
        due_on=timezone.localdate() + timedelta(days=3),
        group=group,
    )
    data = {
        "申请",
        "好",
        "骨科组",
        board.module.title,
        shell_network.center.name,
        shell_network.yongren.name,
        board.station.name,
        *(u.person.full_name for u in [board.applicant, board.chair, *board.members]),
    }
    pages = [
        (board.chair, "/credentialing/"),
        (board.applicant, f"/credentialing/requirements/{board.requirement.pk}/apply/"),
        (board.chair, f"/credentialing/applications/{application.pk}/"),
        (board.chair, "/credentialing/privileges/"),
        (board.applicant, "/training/"),
        (board.chair, f"/training/groups/{group.pk}/"),
    ]
    for user, path in pages:
        client = signed_in_client(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        response = client.get(path)
        assert response.status_code == 200, path
        left = _other_language(response.content.decode(), language, data)
        assert left == [], (path, left)
