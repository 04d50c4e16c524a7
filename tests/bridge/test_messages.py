"""Message schemas: every type round-trips; each class of bad frame is refused with its code;
no input bytes make decode raise anything but BridgeProtocolError; signatures are canonical."""

import random
import time

import msgspec
import pytest

from bridge.messages import (
    MAX_FRAME_BYTES,
    MESSAGE_TYPES,
    BridgeProtocolError,
    CaseChunk,
    CaseRequest,
    Enroll,
    EnrollOk,
    Error,
    Heartbeat,
    Hello,
    Result,
    ResultAck,
    SessionStarted,
    SignIn,
    SignInOk,
    StartSession,
    StartStream,
    StopStream,
    StreamStatus,
    Telemetry,
    check_stream,
    decode,
    encode,
)
from bridge.signing import (
    SignatureInvalidError,
    new_signing_key,
    recording_hash,
    sign_result,
    signed_bytes,
    verify_result,
)

SAMPLES = [
    Enroll(code="C", curve_public_key="k" * 40, signing_public_key="a" * 64, hostname="h"),
    EnrollOk(
        station_id="s",
        name="n",
        institution="i",
        room="r",
        shell_curve_key="k" * 40,
        router_port=1,
        telemetry_port=2,
    ),
    Hello(station_id="s", state="idle", software="osteon-engine-1"),
    Heartbeat(state="busy", session_id="x", user="u", outbox_pending=3),
    SignIn(username="u", secret="p"),
    SignInOk(username="u", display_name="医生", sign_in_id="i"),
    StartSession(
        session_id="x", case_hash="sha256:" + "0" * 64, case_bytes=10, scenario="s", username="u"
    ),
    SessionStarted(session_id="x"),
    Telemetry(
        station_id="s",
        session_id="x",
        tick=5,
        state="running",
        tool_position_mm=(1.0, 2.0, 3.0),
        tool_quaternion=(1.0, 0.0, 0.0, 0.0),
        force_n=(0.0, 0.5, 0.0),
        metrics={"peak_force_n": 1.5},
    ),
    CaseRequest(case_hash="sha256:" + "0" * 64, offset=0, length=10),
    CaseChunk(case_hash="sha256:" + "0" * 64, offset=0, total_bytes=3, data=b"abc"),
    ResultAck(result_id="a" * 32),
    Error(code="malformed", reason="x"),
    StartStream(
        stream_id="b" * 32,
        publish_url="ws://127.0.0.1:8765/publish/rooms/station-1/streams/view/360p",
        token="p1." + "x" * 40 + "." + "y" * 43,
    ),
    StopStream(stream_id="b" * 32),
    StreamStatus(stream_id="b" * 32, state="failed", error="the relay refused: 4403"),
]


def make_result(key: object = None, **changes: object) -> Result:
    recording = b"recording bytes"
    fields = dict(
        station_id="st-1",
        username="surgeon",
        session_id="s1",
        case_hash="sha256:" + "0" * 64,
        scenario="pedicle_pilot_hole",
        recording_hash=recording_hash(recording),
        metrics={"time_s": 41.5, "breach_mm": 0.0},
        score=100.0,
        passed=True,
        final_state_hash="sha256:" + "1" * 64,
        ended_at=1796400000.0,
        signature="",
        recording=recording,
    )
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


def envelope(type_: str, body: object, *, v: int = 1, seq: int = 1, **extra: object) -> bytes:
    return msgspec.msgpack.encode(
        {
            "type": type_,
            "v": v,
            "id": "ab" * 16,
            "seq": seq,
            "sent_at": time.time(),
            "body": body,
            **extra,
        }
    )


def test_every_message_type_round_trips() -> None:
    samples = [*SAMPLES, make_result()]
    assert {type(s) for s in samples} == set(MESSAGE_TYPES)
    for seq, body in enumerate(samples, start=1):
        env = decode(encode(body, seq=seq))
        assert env.body == body
        assert env.type == body.TYPE and env.seq == seq and len(env.id) == 32


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xff\x00garbage", "malformed"),
        (msgspec.msgpack.encode([1, 2, 3]), "malformed"),
        (envelope("heartbeat", {"state": "idle"}, extra_field=1), "malformed"),
        (envelope("heartbeat", {"state": "asleep"}), "malformed"),
        (envelope("heartbeat", {"state": "idle", "surprise": 1}), "malformed"),
        (envelope("sign_in", {"username": "u"}), "malformed"),
        (envelope("heartbeat", {"state": "idle"}, seq=0), "malformed"),
        (envelope("format_disk", {}), "unknown_type"),
        (envelope("heartbeat", {"state": "idle"}, v=2), "unknown_version"),
        (envelope("heartbeat", {"state": "idle", "user": "x" * 5000}), "oversized"),
    ],
    # named, not by their bytes: those hold the time they were made, and parallel workers must
    # collect the same test names
    ids=[
        "garbage",
        "array",
        "extra-envelope-field",
        "bad-state",
        "extra-body-field",
        "body-of-another-type",
        "seq-zero",
        "unknown-type",
        "unknown-version",
        "oversized-field",
    ],
)
def test_each_bad_frame_is_refused_with_its_code(frame: bytes, code: str) -> None:
    with pytest.raises(BridgeProtocolError) as info:
        decode(frame)
    assert info.value.code == code


def test_a_frame_over_the_largest_limit_is_refused_before_parsing() -> None:
    with pytest.raises(BridgeProtocolError) as info:
        decode(b"\x00" * (MAX_FRAME_BYTES + 1))
    assert info.value.code == "oversized"


def test_random_and_mutated_bytes_only_ever_raise_the_protocol_error() -> None:
    rng = random.Random(7)
    valid = [encode(s, seq=1) for s in SAMPLES]
    codes: set[str] = set()
    for i in range(5000):
        if i % 2:
            frame = rng.randbytes(rng.randrange(0, 300))
        else:
            frame = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 6)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            frame = bytes(frame)
        try:
            decode(frame)
        except BridgeProtocolError as exc:
            codes.add(exc.code)
    assert {"malformed"} <= codes


def test_the_signed_bytes_do_not_depend_on_metric_order() -> None:
    a = make_result(metrics={"a": 1.0, "b": 2.0})
    b = make_result(metrics={"b": 2.0, "a": 1.0})
    assert signed_bytes(a) == signed_bytes(b)


def test_a_signed_result_verifies_and_any_change_breaks_it() -> None:
    key = new_signing_key()
    verify = key.verify_key.encode().hex()
    signed = sign_result(make_result(), key)
    verify_result(signed, verify)
    for change in (
        {"metrics": {"time_s": 41.4, "breach_mm": 0.0}},
        {"score": 99.0},
        {"username": "someone"},
        {"final_state_hash": "sha256:" + "2" * 64},
        {"station_id": "st-2"},
    ):
        tampered = msgspec.structs.replace(signed, **change)
        with pytest.raises(SignatureInvalidError):
            verify_result(tampered, verify)


def test_a_result_signed_by_another_key_does_not_verify() -> None:
    signed = sign_result(make_result(), new_signing_key())
    with pytest.raises(SignatureInvalidError):
        verify_result(signed, new_signing_key().verify_key.encode().hex())


def test_results_refused_for_good_are_not_resent_and_name_real_codes() -> None:
    # a station resends a result until acked, unless the refusal cannot change on a resend
    from bridge.messages import ERROR_CODES
    from bridge.station import TERMINAL_RESULT_CODES

    assert set(TERMINAL_RESULT_CODES) <= set(ERROR_CODES)
    for code in ("bad_signature", "bad_recording", "wrong_station", "session_mismatch"):
        assert code in TERMINAL_RESULT_CODES


GOOD_STREAM = StartStream(
    stream_id="b" * 32,
    publish_url="wss://relay.cx-center.example:443/publish/rooms/station-1/streams/view/720p",
    token="p1." + "x" * 40 + "." + "y" * 43,
    fps=10,
    width=640,
    height=360,
)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({}, ""),
        ({"stream_id": "B" * 32}, "stream_id"),
        ({"publish_url": "http://relay/publish/rooms/r/streams/s/360p"}, "publish_url"),
        ({"publish_url": "ws://relay/rooms/r/streams/s/360p"}, "publish_url"),
        ({"publish_url": "ws://relay/publish/rooms/r/streams/s/360p?x=1"}, "publish_url"),
        ({"publish_url": "ws://relay/publish/rooms/../streams/s/360p"}, "publish_url"),
        ({"publish_url": "ws://user@relay/publish/rooms/r/streams/s/360p"}, "publish_url"),
        ({"publish_url": "ws://relay/publish/rooms/r/streams/s/4k"}, "publish_url"),
        ({"token": "v1." + "x" * 40 + "." + "y" * 43}, "token"),
        ({"token": "p1.x.y&evil=1"}, "token"),
        ({"fps": 0}, "fps"),
        ({"fps": 61}, "fps"),
        ({"width": 4096, "height": 2160}, "size"),
    ],
)
def test_a_station_refuses_a_stream_command_it_should_not_run(
    changes: dict[str, object], why: str
) -> None:
    problem = check_stream(msgspec.structs.replace(GOOD_STREAM, **changes))
    assert problem.startswith(why) if why else problem == ""
