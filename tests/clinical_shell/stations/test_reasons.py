"""Reasons are stored as a stable code with parameters beside the bilingual audit text, and
shown in the reader's language: a rejected result on its page and in the API, a refused message
on its station's page (for the station's administrators)."""

import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils.translation import override
from station_helpers import EngineSession, EnrolledStation, StationPersonas, with_changes
from test_results import _altered_recording, _result_for, _shell_session

from clinical_shell.stations import reasons, services
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import RefusedMessage


@pytest.fixture
def case_hash(enrolled: EnrolledStation, engine_session: EngineSession) -> str:
    from clinical_shell.stations import case_archives

    return case_archives.archive_for_bundle(engine_session.case_dir).archive_hash


# parameters enough for every sentence
PARAMS = {
    "claimed": "7",
    "sender": "3",
    "username": "nobody",
    "scenario": "burr_lesion",
    "expected": "pedicle_pilot_hole",
    "case": "sha256:00",
    "recorded": "burr_lesion",
    "used": "drill_2.5mm",
    "prescribed": "drill_3.5mm",
    "detail": "truncated file",
    "replayed": "sha256:aa",
    "signed": "sha256:bb",
    "metrics": ["breach_mm", "time_s"],
    "grace_s": 600,
    "error": "no haptic device",
}


@pytest.mark.parametrize("code", sorted(reasons._SENTENCES))
def test_every_reason_code_reads_in_chinese_and_in_english(code: str) -> None:
    with override("zh-hans"):
        chinese = reasons.describe(code, PARAMS)
    with override("en"):
        english = reasons.describe(code, PARAMS)
    assert chinese and english and chinese != english
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english), english
    assert reasons.Reason(code, PARAMS).text == f"{chinese} / {english}"


def test_an_unknown_code_or_missing_parameters_fall_back_to_the_stored_text() -> None:
    assert reasons.describe("from_a_newer_station", {}, "原文 / as sent") == "原文 / as sent"
    assert reasons.describe("wrong_station", {}, "stored text") == "stored text"


def test_a_rejected_result_shows_why_in_the_readers_language(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    tmp_path: Path,
    signed_in_client: Any,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    result = _result_for(
        enrolled,
        people.surgeon,
        session.uid,
        case_hash,
        engine_session,
        recording=_altered_recording(engine_session, tmp_path),
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    rejected = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert rejected.verification == "rejected" and rejected.rejection_code == "state_mismatch"
    assert rejected.rejection_params["signed"] == result.final_state_hash
    # the audit text keeps both languages
    assert "重放的最终状态哈希" in rejected.rejection_reason
    assert "final state hash" in rejected.rejection_reason

    client: Client = signed_in_client(people.surgeon)
    url = f"/stations/sessions/{session.pk}/"
    chinese = client.get(url).content.decode()
    assert "重放的最终状态哈希" in chinese and "final state hash" not in chinese
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "final state hash" in english and "重放的最终状态哈希" not in english
    api = f"/api/v1/stations/results/{rejected.pk}"
    got = client.get(api, HTTP_ACCEPT_LANGUAGE="en").json()
    assert got["rejection_code"] == "state_mismatch"
    assert got["rejection_reason"] == rejected.rejection_reason  # the field as it always was
    assert got["rejection_reason_text"].startswith("the replay's final state hash")
    got_zh = client.get(api, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert got_zh["rejection_reason_text"].startswith("重放的最终状态哈希")


def test_refusals_show_on_the_station_page_in_the_readers_language(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    case_hash: str,
    signed_in_client: Any,
) -> None:
    session = _shell_session(enrolled, people, engine_session)
    genuine = _result_for(enrolled, people.surgeon, session.uid, case_hash, engine_session)
    with pytest.raises(services.StationError) as refused:
        services.accept_result(
            station=enrolled.station,
            message_id=uuid.uuid4().hex,
            result=with_changes(genuine, score=0.0),
        )
    # the station hears both languages (it has no Django)
    assert "签名" in refused.value.message and "signature" in refused.value.message
    # the endpoint's own refusal, recorded through the bridge side: its code reads translated
    side = DjangoShellSide()
    ref = side.station_for_key(enrolled.keys.curve_public)
    assert ref is not None
    side.refuse_result(
        ref, message_id="e" * 32, result=genuine, code="bad_recording", reason="hash differs"
    )
    rows = list(RefusedMessage.objects.order_by("id"))
    assert [(r.code, r.reason_code) for r in rows] == [
        ("bad_signature", "bad_signature"),
        ("bad_recording", "bad_recording"),
    ]

    admin: Client = signed_in_client(people.administrator)
    url = f"/stations/{enrolled.station.pk}/"
    chinese = admin.get(url).content.decode()
    assert 'id="refusals"' in chinese
    assert "签名与该工作站的密钥不符" in chinese and "录制文件与签名中的哈希不符" in chinese
    assert "does not verify" not in chinese
    english = admin.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "the signature does not verify with this station" in english
    assert "the recording does not match its signed hash" in english
    assert "签名与该工作站的密钥不符" not in english
    # the trainee does not administer the station: no refusals on the page
    trainee = signed_in_client(people.surgeon).get(url).content.decode()
    assert 'id="refusals"' not in trainee and "签名与该工作站的密钥不符" not in trainee
