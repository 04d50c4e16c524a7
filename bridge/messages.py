"""Every message between a station and the shell: one versioned msgspec schema per type.

A frame on the wire is one msgpack map, the envelope::

    {"type": "result", "v": 1, "id": "<uuid4 hex>", "seq": 17, "sent_at": 1796400000.25,
     "body": {...fields of Result...}}

- ``type`` names the message, ``v`` the version of that message's schema (each type carries
  its own ``VERSION``; a type whose schema changes gets a new version, and a peer refuses a
  version it does not know rather than guessing);
- ``id`` is unique per message. A result keeps the id of its outbox row on every resend, so
  the shell deduplicates by it; every other type gets a fresh id per send;
- ``seq`` counts up by one per message on one connection, from 1 (the endpoint refuses a
  sequence number it has already seen on that connection: a replayed or reordered frame);
- ``sent_at`` is the sender's UTC wall clock in seconds since the epoch (a frame too far off
  the receiver's clock is refused as stale).

``decode(frame)`` checks, in this order, the size limit of the whole frame (the largest type's
limit), the envelope, the type, its version, the type's own size limit and the body's schema,
and raises ``BridgeProtocolError`` with a ``code`` naming what was wrong; it never raises
anything else for any input bytes.
"""

import hashlib
import math
import re
import time
import uuid
from typing import Any, ClassVar, Final, Literal

import msgspec

# the largest frame accepted at all: a result with its recording (see Result.MAX_BYTES)
MAX_FRAME_BYTES: Final = 64 * 2**20
# a frame whose sent_at is further than this from the receiver's clock is refused
MAX_CLOCK_SKEW_S: Final = 300.0
# case chunks are at most this long (the station asks for them one at a time)
MAX_CHUNK_BYTES: Final = 1 * 2**20


class BridgeProtocolError(Exception):
    """A frame that is not a valid message. ``code`` is one of ``ERROR_CODES``'s protocol codes:
    ``malformed``, ``oversized``, ``unknown_type``, ``unknown_version``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


# the codes of Error.code, and what each means (docs/bridge.md explains them to operators)
ERROR_CODES: Final[dict[str, str]] = {
    "malformed": "the frame is not a valid envelope or its body does not fit the type's schema",
    "oversized": "the frame is larger than the limit of its message type",
    "unknown_type": "the message type is not one this endpoint knows",
    "unknown_version": "the schema version of this message type is not one this endpoint knows",
    "out_of_order": "the sequence number is not above the last one seen on this connection",
    "replayed": "a message with this id was already received (and is not a result resend)",
    "stale": "sent_at is too far from the receiver's clock",
    "unexpected": "this message type is not accepted on this socket or in this state",
    "unknown_station": "the sender's CURVE key belongs to no enrolled station",
    "revoked": "the station has been revoked in the shell",
    "enrolment_refused": "the enrolment code is unknown, used, expired, or the keys are bad",
    "sign_in_refused": "wrong user name, password or one-time code, or the account is locked",
    "bad_signature": "the result's Ed25519 signature does not verify with the station's key",
    "bad_recording": "the recording's sha256 is not the recording hash in the signed result",
    "wrong_station": "the result names another station than the one that sent it",
    "not_signed_in": "the result's user is not signed in at this station",
    "session_mismatch": (
        "the result's case, scenario or plan digest is not the one its session was started with"
    ),
    "unknown_case": "no case with this content hash",
    "bad_range": "the requested case chunk is outside the case or too long",
    "internal": "the shell failed to handle a valid message (logged on the shell)",
}


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every message body: ``TYPE`` on the wire, ``VERSION`` of the schema, and
    ``MAX_BYTES``, the largest frame of this type."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    MAX_BYTES: ClassVar[int] = 4096


# ---- enrolment (enrolment socket only) -------------------------------------------------------


class Enroll(Body, frozen=True):
    """Station -> shell, once: present a one-time enrolment code with the station's keys."""

    TYPE = "enroll"
    code: str
    curve_public_key: str  # z85, 40 characters
    signing_public_key: str  # Ed25519 verify key, hex, 64 characters
    hostname: str
    room: str = ""


class EnrollOk(Body, frozen=True):
    """Shell -> station: the station is enrolled; where and with which key to connect."""

    TYPE = "enroll_ok"
    station_id: str
    name: str
    institution: str
    room: str
    shell_curve_key: str  # z85 public key of the shell's request and telemetry sockets
    router_port: int
    telemetry_port: int


# ---- presence ----------------------------------------------------------------------------------

StationState = Literal["idle", "busy"]


class Hello(Body, frozen=True):
    """Station -> shell, first message on every connection."""

    TYPE = "hello"
    station_id: str
    state: StationState
    software: str  # engine version, e.g. "osteon-engine-1"
    session_id: str = ""


class Heartbeat(Body, frozen=True):
    """Both ways, every HEARTBEAT_S: the station's state; the shell answers with its own."""

    TYPE = "heartbeat"
    state: StationState | Literal["shell"]
    session_id: str = ""
    user: str = ""
    outbox_pending: int = 0


# ---- people ------------------------------------------------------------------------------------


class SignIn(Body, frozen=True):
    """Station -> shell: a person signs in with their shell account."""

    TYPE = "sign_in"
    username: str
    secret: str  # password or one-time code
    method: Literal["password", "one_time_code"] = "password"


class SignInOk(Body, frozen=True):
    TYPE = "sign_in_ok"
    username: str
    display_name: str
    sign_in_id: str  # ties later sessions to this sign-in


# ---- sessions ----------------------------------------------------------------------------------


# a plan sent with a session holds at most this many elements
MAX_PLAN_ELEMENTS: Final = 32
# ... and of the case's confirmed annotations at most this many protected tubes, of at most
# this many centre points each, and this many landmarks (they fit one StartSession frame)
MAX_PLAN_ZONES: Final = 16
MAX_ZONE_POINTS: Final = 64
MAX_PLAN_LANDMARKS: Final = 64
PLAN_ZONE_KINDS: Final = ("nerve", "vessel")
# a tube wider than this is not a nerve or a vessel [mm] (sim_core.case.annotations agrees)
MAX_ZONE_RADIUS_MM: Final = 30.0
# the element kinds a station can rehearse: its path is drilled (or the wire driven) entry ->
# target; a burr region is burred around its target; an osteotomy plane is sawn along, entry ->
# target, in the plane of its normal
REHEARSABLE_KINDS: Final = (
    "pedicle_screw",
    "drill_hole",
    "guide_wire",
    "k_wire",
    "burr_region",
    "osteotomy_plane",
)
# an element's diameter [mm]: a drilled path's implant or drill, a burr region's sphere
MAX_PATH_DIAMETER_MM: Final = 20.0
MAX_REGION_DIAMETER_MM: Final = 60.0
PLAN_DIGEST_TAG: Final = "osteon-plan-v1"


class PlanElementSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One element of a surgical plan: a straight path in the case frame (mm); an osteotomy
    plane's ``normal`` too."""

    element_id: int
    kind: str  # planning's element kind: pedicle_screw, drill_hole, k_wire, ...
    entry_mm: tuple[float, float, float]
    target_mm: tuple[float, float, float]
    diameter_mm: float  # the implant's or the drill's; a burr region's sphere
    normal: tuple[float, float, float] | None = None


class ZoneSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A protected tube a surgeon confirmed on the case (``sim_core.case.annotations.Tube``):
    centre points in the case frame (mm) and one radius."""

    name: str
    kind: str  # nerve | vessel
    points_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float


class LandmarkSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A landmark a surgeon confirmed on the case, in the case frame (mm)."""

    name: str
    point_mm: tuple[float, float, float]


class PlanSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The approved plan a session rehearses: every element's path, the one to drill
    (``element_id``), the case's confirmed protected tubes and landmarks (a real CT has none
    of its own: the station marks the tubes as nerve or vessel, so touching them counts), and
    ``digest`` = ``plan_digest(case_hash, ...)`` of all of it."""

    plan_id: int
    version: int
    element_id: int
    elements: tuple[PlanElementSpec, ...]
    digest: str
    zones: tuple[ZoneSpec, ...] = ()
    landmarks: tuple[LandmarkSpec, ...] = ()


def plan_digest(
    case_hash: str,
    plan_id: int,
    version: int,
    elements: tuple[PlanElementSpec, ...],
    zones: tuple[ZoneSpec, ...] = (),
    landmarks: tuple[LandmarkSpec, ...] = (),
) -> str:
    """The plan's digest, "sha256:<hex>", over the case archive's hash, the plan's id and
    version, every element's id, kind, entry, target and diameter, and the tubes and landmarks
    sent with it (msgpack, a fixed order): a plan names the case it was made on, so the same
    trajectories sent with another case digest differently. Without tubes or landmarks the
    digest is the one plans had before they carried any."""
    fields: list[Any] = [
        PLAN_DIGEST_TAG,
        case_hash,
        int(plan_id),
        int(version),
        [
            [
                int(e.element_id),
                e.kind,
                [float(x) for x in e.entry_mm],
                [float(x) for x in e.target_mm],
                float(e.diameter_mm),
                # a plane's normal: only where there is one (other elements digest as before)
                *([[float(x) for x in e.normal]] if e.normal is not None else []),
            ]
            for e in elements
        ],
    ]
    if zones or landmarks:
        fields.append(
            [
                [z.name, z.kind, [[float(c) for c in p] for p in z.points_mm], float(z.radius_mm)]
                for z in zones
            ]
        )
        fields.append([[m.name, [float(c) for c in m.point_mm]] for m in landmarks])
    return "sha256:" + hashlib.sha256(_ENCODER.encode(fields)).hexdigest()


def _finite(values: tuple[float, ...] | list[float]) -> bool:
    return all(math.isfinite(x) for x in values)


def _check_annotations(plan: "PlanSpec") -> None:
    # the shell checked them when the surgeon saved them; a station checks them again, as it
    # does every field of a frame (the numbers become voxels of its model)
    if len(plan.zones) > MAX_PLAN_ZONES or len(plan.landmarks) > MAX_PLAN_LANDMARKS:
        raise ValueError(
            f"保护区或标志点过多 / at most {MAX_PLAN_ZONES} tubes and "
            f"{MAX_PLAN_LANDMARKS} landmarks"
        )
    for zone in plan.zones:
        if (
            zone.kind not in PLAN_ZONE_KINDS
            or not 0 < len(zone.points_mm) <= MAX_ZONE_POINTS
            or not _finite([c for p in zone.points_mm for c in p])
            or not (math.isfinite(zone.radius_mm) and 0 < zone.radius_mm <= MAX_ZONE_RADIUS_MM)
        ):
            raise ValueError(
                f"保护区 {zone.name[:40]!r} 无效 / protected tube {zone.name[:40]!r} is not "
                f"valid (kind nerve or vessel, 1 to {MAX_ZONE_POINTS} finite points, radius in "
                f"(0, {MAX_ZONE_RADIUS_MM:.0f}] mm)"
            )
    names = [m.name for m in plan.landmarks]
    if len(set(names)) != len(names) or not all(_finite(m.point_mm) for m in plan.landmarks):
        raise ValueError("标志点重复或坐标无效 / a landmark repeats or is not finite")


def check_plan(case_hash: str, plan: PlanSpec) -> PlanElementSpec:
    """The element ``plan`` asks to rehearse, after checking the plan; ``ValueError`` with a
    "中文 / English" message when its digest does not match (another case, changed numbers),
    an element is not finite or not rehearsable, or the chosen element is not in it."""
    if not 0 < len(plan.elements) <= MAX_PLAN_ELEMENTS:
        raise ValueError(
            f"规划要素数量无效 / a plan holds 1 to {MAX_PLAN_ELEMENTS} elements, "
            f"not {len(plan.elements)}"
        )
    digest = plan_digest(
        case_hash, plan.plan_id, plan.version, plan.elements, plan.zones, plan.landmarks
    )
    if digest != plan.digest:
        raise ValueError(
            "规划摘要不符（规划被改动或属于另一病例） / the plan digest does not match its "
            "trajectories and case (changed, or a plan for another case)"
        )
    chosen = [e for e in plan.elements if e.element_id == plan.element_id]
    if len(chosen) != 1:
        raise ValueError(
            f"规划中没有要素 {plan.element_id} / "
            f"element {plan.element_id} is not (once) in the plan"
        )
    element = chosen[0]
    if element.kind not in REHEARSABLE_KINDS:
        raise ValueError(
            f"要素类型 {element.kind[:40]!r} 不能在工作站上演练 / element kind "
            f"{element.kind[:40]!r} cannot be rehearsed (known: {', '.join(REHEARSABLE_KINDS)})"
        )
    numbers = [*element.entry_mm, *element.target_mm, element.diameter_mm]
    if element.kind == "osteotomy_plane":
        if element.normal is None:
            raise ValueError("截骨平面缺少法向 / the osteotomy plane has no normal")
        numbers += element.normal
    widest = MAX_REGION_DIAMETER_MM if element.kind == "burr_region" else MAX_PATH_DIAMETER_MM
    if not all(math.isfinite(x) for x in numbers) or not 0 < element.diameter_mm <= widest:
        raise ValueError(
            "要素坐标或直径无效 / the element's points or diameter are not valid numbers"
        )
    _check_annotations(plan)
    return element


class StartSession(Body, frozen=True, omit_defaults=True):
    """Shell -> station (command): run scenario S on case C for user U; with ``plan``, on the
    trajectory of the plan's chosen element instead of the case's own (a rehearsal).

    Fields at their default are left off the wire, so a session without a plan is the same
    frame an older station knows."""

    TYPE = "start_session"
    # a plan with its tubes and landmarks at their limits fits (about 40 kB)
    MAX_BYTES = 65536
    session_id: str
    case_hash: str  # "sha256:<hex>" of the case archive
    case_bytes: int
    scenario: str
    username: str
    device: str = "scripted:expert"  # what drives the tool: scripted:expert|novice, mouse, ...
    instrument: str = ""
    plan: PlanSpec | None = None


class SessionStarted(Body, frozen=True):
    """Station -> shell: the session is running (or could not start: ``error`` set). Sent again
    with ``error`` when a started session fails before its result: the session is aborted."""

    TYPE = "session_started"
    session_id: str
    error: str = ""


class Telemetry(Body, frozen=True):
    """Station -> shell (telemetry socket), up to 60 Hz during a session."""

    TYPE = "telemetry"
    MAX_BYTES = 8192
    station_id: str
    session_id: str
    tick: int
    state: Literal["loading", "running", "ended"]
    tool_position_mm: tuple[float, float, float]
    tool_quaternion: tuple[float, float, float, float]  # w, x, y, z
    force_n: tuple[float, float, float]
    metrics: dict[str, float] = {}


# ---- the station's view, streamed live (docs/streaming.md "Publishing") ------------------------


class StartStream(Body, frozen=True):
    """Shell -> station (command): encode this station's view and publish it to the relay at
    ``publish_url`` (``ws[s]://HOST:PORT/publish/rooms/<room>/streams/<stream>/<quality>``)
    with ``token``, a short-lived publish token for exactly that room and stream
    (`streaming.tokens.issue_publish_token`). The station checks every field (`check_stream`)
    and answers with `StreamStatus`."""

    TYPE = "start_stream"
    stream_id: str  # 32 hex digits, the shell's row
    publish_url: str
    token: str
    fps: int = 10
    width: int = 640
    height: int = 360


class StopStream(Body, frozen=True):
    """Shell -> station (command): stop publishing ``stream_id``."""

    TYPE = "stop_stream"
    stream_id: str


class StreamStatus(Body, frozen=True):
    """Station -> shell: what became of a stream command (``failed``: ``error`` says why)."""

    TYPE = "stream_status"
    stream_id: str
    state: Literal["publishing", "stopped", "failed"]
    error: str = ""


# what a station accepts in a StartStream (a command from the shell is still checked)
MAX_STREAM_FPS: Final = 30
STREAM_SIZES: Final = ((640, 360), (1280, 720))
_PUBLISH_URL: Final = re.compile(
    r"wss?://[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?"
    r"/publish/rooms/[A-Za-z0-9_-]{1,64}/streams/[A-Za-z0-9_-]{1,64}/(1080p|720p|360p)"
)
_TOKEN: Final = re.compile(r"p1\.[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{43}")


def check_stream(command: StartStream) -> str:
    """Why a station refuses ``command`` ("" when it does not): an id that is not 32 hex
    digits, a publish URL not of the relay's publish form, a token not shaped like a publish
    token, a frame rate or picture size out of range."""
    if not _is_hex_id(command.stream_id):
        return "stream_id: expected 32 hex digits"
    if not _PUBLISH_URL.fullmatch(command.publish_url):
        return "publish_url: expected ws[s]://HOST[:PORT]/publish/rooms/R/streams/S/QUALITY"
    if not _TOKEN.fullmatch(command.token):
        return "token: not a publish token"
    if not 1 <= command.fps <= MAX_STREAM_FPS:
        return f"fps: expected 1..{MAX_STREAM_FPS}"
    if (command.width, command.height) not in STREAM_SIZES:
        return f"size: expected one of {STREAM_SIZES}"
    return ""


# ---- cases ---------------------------------------------------------------------------------------


class CaseRequest(Body, frozen=True):
    """Station -> shell: ``length`` bytes of the case archive ``case_hash`` from ``offset``."""

    TYPE = "case_request"
    case_hash: str
    offset: int
    length: int


class CaseChunk(Body, frozen=True):
    TYPE = "case_chunk"
    MAX_BYTES = MAX_CHUNK_BYTES + 4096
    case_hash: str
    offset: int
    total_bytes: int
    data: bytes


# ---- results -------------------------------------------------------------------------------------


class Result(Body, frozen=True, omit_defaults=True):
    """Station -> shell: the end of a session, signed by the station, with its recording.

    The signature covers ``bridge.signing.signed_bytes(result)``: station, user, case hash,
    scenario, recording hash, metrics, score and final-state hash, and the plan digest of a
    rehearsal (not the recording itself: its sha256 is the recording hash, checked by the
    endpoint). ``plan_digest`` is "" (and left off the wire) for a session without a plan."""

    TYPE = "result"
    MAX_BYTES = MAX_FRAME_BYTES
    station_id: str
    username: str
    session_id: str
    case_hash: str
    scenario: str
    recording_hash: str  # "sha256:<hex>" of ``recording``
    metrics: dict[str, float]
    score: float
    passed: bool
    final_state_hash: str
    ended_at: float  # UTC seconds since the epoch, when the session ended
    signature: str  # Ed25519 signature, hex
    recording: bytes
    plan_digest: str = ""  # PlanSpec.digest of the plan the session rehearsed


class ResultAck(Body, frozen=True):
    """Shell -> station: the result with this message id is stored (``duplicate``: already was)."""

    TYPE = "result_ack"
    result_id: str  # the envelope id of the Result
    duplicate: bool = False
    status: str = "pending"  # verification status in the shell: pending, verified, rejected


class Error(Body, frozen=True):
    """Either way: the message ``in_reply_to`` was refused; ``code`` is one of ERROR_CODES."""

    TYPE = "error"
    code: str
    reason: str
    in_reply_to: str = ""


MESSAGE_TYPES: Final[tuple[type[Body], ...]] = (
    Enroll,
    EnrollOk,
    Hello,
    Heartbeat,
    SignIn,
    SignInOk,
    StartSession,
    SessionStarted,
    Telemetry,
    StartStream,
    StopStream,
    StreamStatus,
    CaseRequest,
    CaseChunk,
    Result,
    ResultAck,
    Error,
)
_BY_TYPE: Final[dict[str, type[Body]]] = {t.TYPE: t for t in MESSAGE_TYPES}


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One decoded frame."""

    type: str
    v: int
    id: str
    seq: int
    sent_at: float
    body: Body


class _RawEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    v: int
    id: str
    seq: int
    sent_at: float
    body: msgspec.Raw


class _OutEnvelope(msgspec.Struct, frozen=True):
    type: str
    v: int
    id: str
    seq: int
    sent_at: float
    body: Any


_ENCODER: Final = msgspec.msgpack.Encoder()
_RAW_DECODER: Final = msgspec.msgpack.Decoder(_RawEnvelope)
_BODY_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[Any]]] = {
    t.TYPE: msgspec.msgpack.Decoder(t) for t in MESSAGE_TYPES
}


def new_id() -> str:
    """A fresh message id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


def encode(body: Body, *, seq: int, message_id: str | None = None) -> bytes:
    """The frame carrying ``body`` (a fresh id unless ``message_id`` is given)."""
    envelope = _OutEnvelope(
        type=body.TYPE,
        v=body.VERSION,
        id=message_id or new_id(),
        seq=seq,
        sent_at=time.time(),
        body=body,
    )
    return _ENCODER.encode(envelope)


def _is_hex_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def decode(frame: bytes | memoryview) -> Envelope:
    """The envelope in ``frame``, its body typed; ``BridgeProtocolError`` for anything else."""
    # the size check comes first, so a huge frame costs nothing more
    if len(frame) > MAX_FRAME_BYTES:
        raise BridgeProtocolError("oversized", f"{len(frame)} bytes > {MAX_FRAME_BYTES}")
    try:
        raw = _RAW_DECODER.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BridgeProtocolError("malformed", f"envelope: {exc}") from None
    if not _is_hex_id(raw.id) or raw.seq < 1:
        raise BridgeProtocolError("malformed", "envelope: id must be 32 hex digits, seq >= 1")
    kind = _BY_TYPE.get(raw.type)
    if kind is None:
        raise BridgeProtocolError("unknown_type", f"message type {raw.type[:40]!r}")
    if raw.v != kind.VERSION:
        raise BridgeProtocolError(
            "unknown_version", f"{raw.type} version {raw.v} (known: {kind.VERSION})"
        )
    if len(frame) > kind.MAX_BYTES:
        raise BridgeProtocolError("oversized", f"{raw.type}: {len(frame)} > {kind.MAX_BYTES}")
    try:
        body = _BODY_DECODERS[raw.type].decode(raw.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BridgeProtocolError("malformed", f"{raw.type}: {exc}") from None
    return Envelope(type=raw.type, v=raw.v, id=raw.id, seq=raw.seq, sent_at=raw.sent_at, body=body)
