"""The endpoint on real CURVE sockets: ZAP admits only enrolled, unrevoked keys; revocation
cuts within seconds; every bad frame gets its error and the endpoint keeps answering; results
are checked (signature, station, recording) before the shell stores them, once per id."""

import random
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
import zmq
from bridge_helpers import Bridge, Client, enrol_station, station_client
from test_messages import SAMPLES

from bridge.keys import new_curve_keys
from bridge.messages import (
    BridgeProtocolError,
    Enroll,
    Error,
    Heartbeat,
    Hello,
    Result,
    ResultAck,
    SignIn,
    SignInOk,
    Telemetry,
    decode,
    encode,
)
from bridge.signing import new_signing_key, recording_hash, sign_result
from bridge.station import StationIdentity


def handshake_failed(client: Client, timeout_s: float = 3.0) -> bool:
    """True once the client's monitor reports a failed CURVE/ZAP handshake."""
    from zmq.utils.monitor import recv_monitor_message

    failures = {
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.monitor.poll(100) and recv_monitor_message(client.monitor)["event"] in failures:
            return True
    return False


def signed_result(identity: StationIdentity, **changes: object) -> Result:
    recording = b"\x93NUMPY fake recording " * 50
    fields = dict(
        station_id=identity.config.station_id,
        username="surgeon",
        session_id="s1",
        case_hash="sha256:" + "0" * 64,
        scenario="pedicle_pilot_hole",
        recording_hash=recording_hash(recording),
        metrics={"time_s": 41.5, "breach_mm": 0.0},
        score=100.0,
        passed=True,
        final_state_hash="sha256:" + "1" * 64,
        ended_at=time.time(),
        signature="",
        recording=recording,
    )
    fields.update(changes)
    return sign_result(Result(**fields), identity.signing_key)  # type: ignore[arg-type]


def signed_in(bridge: Bridge, identity: StationIdentity) -> Client:
    client = station_client(bridge, identity)
    client.send(SignIn(username="surgeon", secret="pw-surgeon"))
    assert client.recv_type(SignInOk) is not None
    return client


def test_an_enrolled_station_is_admitted_and_shown_online(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = station_client(bridge, station)
    client.send(Hello(station_id=station.config.station_id, state="idle", software="t"))
    assert client.recv_type(Heartbeat) == Heartbeat(state="shell")
    assert bridge.side.presence(station.config.station_id)[0] == "online"
    assert station.config.room == "模拟训练室 1"
    # silence: offline within 3 s
    client.close()
    deadline = time.monotonic() + 3.0
    while bridge.side.presence(station.config.station_id)[0] != "offline":
        assert time.monotonic() < deadline, "station still online 3 s after going silent"
        time.sleep(0.1)


def test_station_keys_are_private_files(
    bridge: Bridge, station: StationIdentity, tmp_path: Path
) -> None:
    from bridge.outbox import Outbox

    Outbox(tmp_path / "station" / "outbox.sqlite3").close()
    for name in ("curve.key", "signing.key", "station.json", "outbox.sqlite3"):
        assert (tmp_path / "station" / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "station").stat().st_mode & 0o777 == 0o700


def test_zap_refuses_an_unknown_key(bridge: Bridge) -> None:
    client = Client(f"tcp://127.0.0.1:{bridge.port + 1}", new_curve_keys(), bridge.keys.public)
    client.send(Heartbeat(state="idle"))
    assert handshake_failed(client)
    assert client.recv(timeout_s=0.5) is None
    assert bridge.endpoint.stats.zap_refused >= 1
    client.close()


def test_a_wrong_shell_key_fails_the_handshake(bridge: Bridge, station: StationIdentity) -> None:
    client = Client(f"tcp://127.0.0.1:{bridge.port + 1}", station.curve, new_curve_keys().public)
    client.send(Heartbeat(state="idle"))
    assert handshake_failed(client)
    assert client.recv(timeout_s=0.5) is None
    client.close()


def test_revocation_cuts_an_open_connection_within_seconds(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = station_client(bridge, station)
    client.send(Heartbeat(state="idle"))
    assert client.recv_type(Heartbeat) is not None
    bridge.side.revoke(station.config.station_id)
    revoked_at = time.monotonic()
    # told without sending anything, within seconds
    error = client.recv_type(Error, timeout_s=3.0)
    assert error is not None and error.code == "revoked"
    assert time.monotonic() - revoked_at < 3.0
    # and nothing it sends is served any more
    client.send(Heartbeat(state="idle"))
    error = client.recv_type(Error, timeout_s=3.0)
    assert error is not None and error.code == "revoked"
    assert bridge.side.presence(station.config.station_id)[0] == "offline"
    client.close()
    # a new connection with the revoked key does not get past ZAP
    again = station_client(bridge, station)
    again.send(Heartbeat(state="idle"))
    assert handshake_failed(again)
    again.close()


def test_the_enrolment_socket_refuses_a_used_code_and_anything_but_enroll(
    bridge: Bridge, station: StationIdentity
) -> None:
    keys = new_curve_keys()
    client = Client(bridge.url, keys, bridge.keys.public)
    signing = new_signing_key().verify_key.encode().hex()
    client.send(
        Enroll(
            code="CODE-1", curve_public_key=keys.public, signing_public_key=signing, hostname="h"
        )
    )
    error = client.recv_type(Error)
    assert error.code == "enrolment_refused"
    client.send(Heartbeat(state="idle"))
    assert client.recv_type(Error).code == "unexpected"
    # a key other than the connection's own cannot be enrolled
    bridge.side.add_code("CODE-2")
    client.send(
        Enroll(
            code="CODE-2",
            curve_public_key=new_curve_keys().public,
            signing_public_key=signing,
            hostname="h",
        )
    )
    assert client.recv_type(Error).code == "enrolment_refused"
    client.close()


def _raw(message_type: str, version: int) -> bytes:
    return msgspec.msgpack.encode(
        {
            "type": message_type,
            "v": version,
            "id": "ab" * 16,
            "seq": 99,
            "sent_at": time.time(),
            "body": {},
        }
    )


# frames are made when the test runs, not at collection: a sent_at taken then would be stale by
# the time a long suite reaches the test (the endpoint refuses frames more than minutes old)
@pytest.mark.parametrize(
    ("make_frame", "code"),
    [
        (lambda: b"not msgpack at all \xc1", "malformed"),
        (lambda: _raw("heartbeat", 9), "unknown_version"),
        (lambda: _raw("rm_rf", 1), "unknown_type"),
        (lambda: encode(Heartbeat(state="idle", user="x" * 10_000), seq=99), "oversized"),
        (
            lambda: encode(
                Enroll(code="c", curve_public_key="k", signing_public_key="s", hostname="h"), seq=99
            ),
            "unexpected",
        ),
    ],
    ids=["malformed", "unknown_version", "unknown_type", "oversized", "unexpected"],
)
def test_each_bad_frame_gets_its_error_over_the_wire(
    bridge: Bridge, station: StationIdentity, make_frame: Callable[[], bytes], code: str
) -> None:
    client = station_client(bridge, station)
    client.send_raw(make_frame())
    error = client.recv_type(Error)
    assert error is not None and error.code == code
    client.close()


def test_a_replayed_frame_and_an_old_sequence_number_are_refused(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = station_client(bridge, station)
    frame = client.send(Heartbeat(state="idle"))
    assert client.recv_type(Heartbeat) is not None
    client.send_raw(frame)
    assert client.recv_type(Error).code == "replayed"
    client.send(Heartbeat(state="idle"), seq=5)
    assert client.recv_type(Heartbeat) is not None
    client.send(Heartbeat(state="idle"), seq=3)
    assert client.recv_type(Error).code == "out_of_order"
    stale = msgspec.msgpack.encode(
        {
            "type": "heartbeat",
            "v": 1,
            "id": "cd" * 16,
            "seq": 50,
            "sent_at": time.time() - 3600,
            "body": {"state": "idle"},
        }
    )
    client.send_raw(stale)
    assert client.recv_type(Error).code == "stale"
    client.close()


def test_thousands_of_random_frames_leave_the_endpoint_answering(
    bridge: Bridge, station: StationIdentity
) -> None:
    rng = random.Random(12)
    client = station_client(bridge, station)
    valid = [encode(s, seq=1) for s in SAMPLES]
    started = time.monotonic()
    garbage = 0  # frames no decoder could read: each must be answered with an error
    for i in range(3000):
        kind = i % 3
        if kind == 0:
            frames = [rng.randbytes(rng.randrange(0, 200))]
        elif kind == 1:
            frame = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 8)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            frames = [bytes(frame)]
        else:
            frames = [rng.randbytes(rng.randrange(1, 40)) for _ in range(rng.randrange(2, 5))]
        garbage += int(len(frames) != 1 or not _decodes(frames[0]))
        client.send_raw(*frames)
    # the endpoint answers every frame with an error (no crash, no stall), then a real request
    client.send(Heartbeat(state="idle"), seq=10_000)
    # the shell also pushes heartbeats on its own: wait until every frame sent was taken
    while bridge.endpoint.stats.frames < 3001 and time.monotonic() - started < 10.0:
        time.sleep(0.05)
    assert client.recv_type(Heartbeat, timeout_s=10.0) == Heartbeat(state="shell")
    assert time.monotonic() - started < 10.0
    assert bridge.thread.is_alive()
    assert bridge.endpoint.stats.frames >= 3001
    # a mutated sample may still be a well-formed message (refused or not for other reasons)
    assert garbage > 2900 and sum(bridge.endpoint.stats.errors.values()) >= garbage
    client.close()


def _decodes(frame: bytes) -> bool:
    try:
        decode(frame)
    except BridgeProtocolError:
        return False
    return True


def test_a_valid_result_is_stored_once_whatever_the_resends(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = signed_in(bridge, station)
    result = signed_result(station)
    client.send(result, message_id="ee" * 16)
    ack = client.recv_type(ResultAck)
    assert ack == ResultAck(result_id="ee" * 16, duplicate=False, status="pending")
    client.send(result, message_id="ee" * 16)
    assert client.recv_type(ResultAck).duplicate is True
    assert bridge.side.accepted_ids() == ["ee" * 16]
    assert bridge.side.effect_counts() == {"ee" * 16: 1}
    client.close()


def test_a_tampered_result_is_refused_and_recorded(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = signed_in(bridge, station)
    good = signed_result(station)
    tampered = msgspec.structs.replace(good, metrics={**good.metrics, "breach_mm": 0.5})
    client.send(tampered, message_id="aa" * 16)
    error = client.recv_type(Error)
    assert error.code == "bad_signature" and error.in_reply_to == "aa" * 16
    assert bridge.side.accepted_ids() == []
    assert bridge.side.refusals()[0][:2] == ("aa" * 16, "bad_signature")


def test_a_result_signed_by_another_stations_key_is_refused(
    bridge: Bridge, station: StationIdentity, tmp_path: Path
) -> None:
    other = enrol_station(bridge, tmp_path / "other", code="CODE-OTHER")
    client = signed_in(bridge, station)
    # names this station, signed with the other station's key
    forged = sign_result(
        msgspec.structs.replace(signed_result(station), signature=""), other.signing_key
    )
    client.send(forged, message_id="bb" * 16)
    assert client.recv_type(Error).code == "bad_signature"
    # signed properly by the other station but sent over this station's connection
    client.send(signed_result(other), message_id="cc" * 16)
    assert client.recv_type(Error).code == "wrong_station"
    # a recording that is not the one the signature covers
    swapped = msgspec.structs.replace(signed_result(station), recording=b"another recording")
    client.send(swapped, message_id="dd" * 16)
    assert client.recv_type(Error).code == "bad_recording"
    assert bridge.side.accepted_ids() == []
    assert [r[1] for r in bridge.side.refusals()] == [
        "bad_signature",
        "wrong_station",
        "bad_recording",
    ]


def test_a_result_of_a_user_not_signed_in_is_refused(
    bridge: Bridge, station: StationIdentity
) -> None:
    client = station_client(bridge, station)
    client.send(signed_result(station, username="nobody"), message_id="ab" * 16)
    assert client.recv_type(Error).code == "not_signed_in"
    client.send(SignIn(username="surgeon", secret="wrong"))
    assert client.recv_type(Error).code == "sign_in_refused"


def test_telemetry_from_a_station_reaches_the_shell(
    bridge: Bridge, station: StationIdentity
) -> None:
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.curve_publickey = station.curve.public.encode()
    pub.curve_secretkey = station.curve.secret.encode()
    pub.curve_serverkey = bridge.keys.public.encode()
    pub.linger = 0
    pub.connect(f"tcp://127.0.0.1:{bridge.port + 2}")
    sample = Telemetry(
        station_id=station.config.station_id,
        session_id="s",
        tick=1,
        state="running",
        tool_position_mm=(0.0, 0.0, 0.0),
        tool_quaternion=(1.0, 0.0, 0.0, 0.0),
        force_n=(0.0, 0.0, 0.0),
    )
    deadline = time.monotonic() + 5
    seq = 0
    while bridge.endpoint.stats.telemetry < 10 and time.monotonic() < deadline:
        seq += 1
        pub.send(encode(sample, seq=seq))
        time.sleep(0.01)
    # another station's id in the sample is not accepted
    forged = msgspec.structs.replace(sample, station_id="st-someone-else")
    before = bridge.endpoint.stats.errors.get("unexpected", 0)
    pub.send(encode(forged, seq=seq + 1))
    time.sleep(0.3)
    pub.close()
    assert bridge.endpoint.stats.telemetry >= 10
    assert bridge.endpoint.stats.errors.get("unexpected", 0) == before + 1
