"""Helpers of the stations tests: the persona set, station keys, enrolment, signed results.

Import as `from station_helpers import ...` (pytest puts this directory on sys.path).
"""

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing
import zmq
from django.contrib.auth.models import User

from bridge.messages import Result
from bridge.signing import sign_result
from clinical_shell.stations import services
from clinical_shell.stations.models import Station


@dataclass(frozen=True)
class StationPersonas:
    surgeon: User
    colleague: User
    outsider: User
    committee_member: User
    administrator: User

    def all(self) -> dict[str, User]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StationKeys:
    curve_public: str
    curve_secret: str
    signing: nacl.signing.SigningKey

    @property
    def verify_hex(self) -> str:
        return self.signing.verify_key.encode().hex()


def new_keys() -> StationKeys:
    public, secret = zmq.curve_keypair()
    return StationKeys(public.decode(), secret.decode(), nacl.signing.SigningKey.generate())


@dataclass(frozen=True)
class EnrolledStation:
    station: Station
    keys: StationKeys


def enrol(admin: User, institution: Any, room: str = "技能中心 2 室") -> EnrolledStation:
    keys = new_keys()
    issued = services.create_enrolment_code(actor=admin, institution=institution, room=room)
    station = services.enroll_station(
        code=issued.code,
        curve_public_key=keys.curve_public,
        signing_public_key=keys.verify_hex,
        hostname="sim-pc-01",
    )
    return EnrolledStation(station, keys)


@dataclass(frozen=True)
class EngineSession:
    case_dir: Path
    content_hash: str
    recording: bytes
    result: dict[str, Any]  # sim_core's result dict (metrics, score, passed, state_hash)


def signed_result(
    enrolled: EnrolledStation,
    *,
    username: str,
    session_id: str,
    case_hash: str,
    recording: bytes,
    engine_result: dict[str, Any],
    key: nacl.signing.SigningKey | None = None,
    scenario: str = "pedicle_pilot_hole",
) -> Result:
    """A result as the station signs it (with `key`, by default the station's own)."""
    unsigned = Result(
        station_id=str(enrolled.station.pk),
        username=username,
        session_id=session_id,
        case_hash=case_hash,
        scenario=scenario,
        recording_hash="sha256:" + hashlib.sha256(recording).hexdigest(),
        metrics={k: float(m["value"]) for k, m in engine_result["metrics"].items()},
        score=float(engine_result["score"]),
        passed=bool(engine_result["passed"]),
        final_state_hash=str(engine_result["state_hash"]),
        ended_at=time.time(),
        signature="",
        recording=recording,
    )
    return sign_result(unsigned, key or enrolled.keys.signing)


def with_changes(result: Result, **changes: Any) -> Result:
    """The same result with fields changed and the signature kept (a tampered copy)."""
    return msgspec.structs.replace(result, **changes)


def tiny_case(root: Path) -> str:
    """A stand-in case bundle (case.json only) for tests that start sessions but never run the
    engine; returns its content hash (the shell packs it like any case)."""
    from clinical_shell.stations import case_archives

    bundle = root / "tiny-case"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "case.json").write_text('{"content_hash": "sha256:tiny"}')
    return case_archives.archive_for_bundle(bundle).content_hash


FAKE_RESULT: dict[str, Any] = {
    "metrics": {"time_s": {"value": 42.0}, "breach_mm": {"value": 0.0}},
    "score": 100.0,
    "passed": True,
    "state_hash": "sha256:" + "ab" * 32,
}
