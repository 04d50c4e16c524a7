"""Results signed by the station that produced them: canonical bytes and Ed25519 (PyNaCl).

The signed bytes are the msgpack encoding of ``SignedFields`` as an array, a fixed field order
(``array_like``), with the metrics as (name, value) pairs sorted by name, so the same result
always gives the same bytes whatever dict order it arrived in. A leading tag names the
encoding's version, so bytes signed for one purpose cannot be taken for another.

A rehearsal's result (``plan_digest`` set) is signed as the same array under its own tag
(``PLAN_SIGNING_TAG``) with the plan digest appended; a result without a plan keeps the first
encoding, so its signature is what it always was, and taking the digest off a rehearsal's
result (or putting one on) breaks the signature.
"""

import hashlib
from typing import Final

import msgspec
import nacl.exceptions
import nacl.signing

from bridge.messages import Result

SIGNING_TAG: Final = "osteon-result-v1"
PLAN_SIGNING_TAG: Final = "osteon-result-plan-v1"


class SignedFields(msgspec.Struct, array_like=True, frozen=True):
    tag: str
    station_id: str
    username: str
    session_id: str
    case_hash: str
    scenario: str
    recording_hash: str
    metrics: list[tuple[str, float]]
    score: float
    passed: bool
    final_state_hash: str
    ended_at: float


_ENCODER: Final = msgspec.msgpack.Encoder()


class SignatureInvalidError(Exception):
    """The signature does not verify, or the key or signature is not well-formed."""


def signed_bytes(result: Result) -> bytes:
    """The canonical bytes a station signs for ``result`` (its signature field excluded)."""
    fields = SignedFields(
        tag=PLAN_SIGNING_TAG if result.plan_digest else SIGNING_TAG,
        station_id=result.station_id,
        username=result.username,
        session_id=result.session_id,
        case_hash=result.case_hash,
        scenario=result.scenario,
        recording_hash=result.recording_hash,
        metrics=sorted((name, float(value)) for name, value in result.metrics.items()),
        score=float(result.score),
        passed=result.passed,
        final_state_hash=result.final_state_hash,
        ended_at=float(result.ended_at),
    )
    if result.plan_digest:
        # PlanSignedFields: the same array with the digest last
        return _ENCODER.encode([*msgspec.structs.astuple(fields), result.plan_digest])
    return _ENCODER.encode(fields)


def recording_hash(recording: bytes) -> str:
    return "sha256:" + hashlib.sha256(recording).hexdigest()


def new_signing_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def signing_key_from_hex(seed_hex: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes.fromhex(seed_hex))


def sign_result(result: Result, key: nacl.signing.SigningKey) -> Result:
    """``result`` with its ``signature`` set (hex of the detached Ed25519 signature)."""
    signature = key.sign(signed_bytes(result)).signature
    return msgspec.structs.replace(result, signature=signature.hex())


def verify_result(result: Result, verify_key_hex: str) -> None:
    """Raise SignatureInvalidError unless ``result.signature`` verifies with the station's key."""
    try:
        key = nacl.signing.VerifyKey(bytes.fromhex(verify_key_hex))
        key.verify(signed_bytes(result), bytes.fromhex(result.signature))
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError) as exc:
        raise SignatureInvalidError(str(exc) or "bad signature") from None
