"""Simulator stations joined over the bridge: enrolment, presence, sessions and their results.

A station enrols once with a one-time code (stored hashed) and is known by its CURVE public key
(the bridge's ZAP handler accepts only enrolled keys) and its Ed25519 signing key (every result it
sends is signed with it). A session belongs to a real shell user; its result takes effect once
(unique message id) and counts only after the shell replayed the recording bit for bit.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.stations import reasons


class EnrolmentCode(models.Model):
    """A one-time, expiring code an administrator hands to a station; only its hash is kept."""

    code_sha256 = models.CharField(max_length=64, unique=True)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    room = models.CharField(max_length=64)
    # None: made on the server console (`osteon shell enrolment-code`), which is trusted
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by_station = models.OneToOneField(
        "Station", null=True, blank=True, on_delete=models.PROTECT, related_name="enrolment_code"
    )

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"enrolment code {self.pk} ({self.institution_id} {self.room})"


class Station(models.Model):
    class Status(models.TextChoices):
        ENROLLED = "enrolled", _("已注册")
        REVOKED = "revoked", _("已吊销")

    class Presence(models.TextChoices):
        ONLINE = "online", _("在线")
        BUSY = "busy", _("使用中")
        OFFLINE = "offline", _("离线")

    name = models.CharField(max_length=100)
    hostname = models.CharField(max_length=255, blank=True)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    room = models.CharField(max_length=64)
    # Z85 text of the 32-byte CURVE public key: what ZAP sees on every connection
    curve_public_key = models.CharField(max_length=40, unique=True)
    # Ed25519 verify key (hex) that every result of this station is signed with
    signing_public_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ENROLLED)
    enrolled_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    # the presence last published; `selectors.presence_of` computes the current one
    presence = models.CharField(max_length=8, choices=Presence.choices, default=Presence.OFFLINE)
    # who is signed in at the station now (the session's user once one runs)
    signed_in_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    current_session = models.OneToOneField(
        "StationSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["institution_id", "room", "name", "id"]
        indexes: ClassVar = [models.Index(fields=["institution", "status"], name="station_inst")]

    def __str__(self) -> str:
        return f"{self.name} ({self.room})"

    @property
    def is_revoked(self) -> bool:
        return self.status == self.Status.REVOKED


class StationSignInCode(models.Model):
    """A short-lived, single-use code a user shows on the shell and types at a station."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    code_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_at_station = models.ForeignKey(
        Station, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )


class StationSignIn(models.Model):
    """A person signed in at a station (password or one-time code); sessions hang off it."""

    class Method(models.TextChoices):
        PASSWORD = "password", _("密码")
        ONE_TIME_CODE = "one_time_code", _("一次性验证码")

    uid = models.CharField(max_length=64, unique=True)
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="sign_ins")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=16, choices=Method.choices)
    signed_in_at = models.DateTimeField(auto_now_add=True)


class StationSession(models.Model):
    class Origin(models.TextChoices):
        SHELL = "shell", _("平台发起")
        STATION = "station", _("工作站发起")

    class State(models.TextChoices):
        QUEUED = "queued", _("等待工作站")
        RUNNING = "running", _("进行中")
        FINISHED = "finished", _("已结束")
        ABORTED = "aborted", _("已中止")

    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="sessions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # the case archive's hash (what travels on the bridge) and the bundle's content hash
    case_hash = models.CharField(max_length=80)
    case_content_hash = models.CharField(max_length=80, blank=True)
    scenario = models.CharField(max_length=64)
    # what drives the tool: "scripted:expert", "mouse", a haptic device name
    device = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    # the session id on the bridge: made by the shell (StartSession) or by the station
    uid = models.CharField(max_length=64, unique=True)
    # the sign-in at the station this session ran under (empty for shell-started sessions)
    sign_in = models.ForeignKey(
        "StationSignIn", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # the latest live metrics the station reported (the page shows them while it runs)
    last_metrics = models.JSONField(default=dict, blank=True)
    # why it was aborted: the bilingual text for the audit trail, and the code and parameters
    # the pages render in the reader's language (`reasons.describe`)
    abort_reason = models.CharField(max_length=500, blank=True)
    abort_code = models.CharField(max_length=32, blank=True)
    abort_params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["user", "created_at"], name="station_session_user"),
            models.Index(fields=["station", "state"], name="station_session_state"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} ({self.scenario})"

    @property
    def abort_reason_display(self) -> str:
        """Why it was aborted, in the active language."""
        return reasons.describe(self.abort_code, self.abort_params, self.abort_reason)


class CaseArchive(models.Model):
    """A case bundle packed as the bridge sends it (a deterministic tar): stations ask for a case
    by the archive's sha256; the bundle's own content hash is what recordings name."""

    archive_hash = models.CharField(max_length=80, unique=True)
    content_hash = models.CharField(max_length=80)
    path = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField()
    bundle_path = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["content_hash"], name="case_archive_content")]


class SessionResult(models.Model):
    """A signed session result; counts only once `verification` is verified (replay matched)."""

    class Verification(models.TextChoices):
        PENDING = "pending", _("待验证")
        VERIFIED = "verified", _("已验证")
        REJECTED = "rejected", _("已拒绝")

    # dedupe: a result resent by the station's outbox takes effect exactly once
    message_id = models.CharField(max_length=64, unique=True)
    session = models.OneToOneField(
        StationSession, null=True, blank=True, on_delete=models.PROTECT, related_name="result"
    )
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="results")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    case_hash = models.CharField(max_length=80)
    scenario = models.CharField(max_length=64)
    # the recording file, stored by its sha256 under OSTEON_STATION_RECORDING_ROOT
    recording_sha256 = models.CharField(max_length=64)
    recording_path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict)
    score = models.FloatField()
    passed = models.BooleanField(default=False)
    final_state_hash = models.CharField(max_length=80)
    # the digest of the surgeon's own plan a rehearsal ran on (signed by the station), "" for
    # a scenario's own trajectory: a rehearsal's score never counts for training or privileges,
    # since the surgeon chose the path it was scored against
    plan_digest = models.CharField(max_length=80, blank=True, default="")
    # hex Ed25519 signature over the canonical encoding of the fields above
    signature = models.CharField(max_length=128)
    # when the session ended, by the station's clock
    ended_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    verification = models.CharField(
        max_length=8, choices=Verification.choices, default=Verification.PENDING
    )
    # why the replay rejected it: bilingual text (audit trail), code and parameters (pages)
    rejection_reason = models.TextField(blank=True)
    rejection_code = models.CharField(max_length=32, blank=True)
    rejection_params = models.JSONField(default=dict, blank=True)
    # it arrived after its session had been aborted (the station was lost for longer than
    # OSTEON_STATION_SESSION_GRACE_S and came back later): stored and verified like any other
    arrived_late = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    # what the replay reported (state hash, ticks, wall time), for the committee
    replay = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering: ClassVar = ["-received_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["user", "verification", "scenario"], name="result_user_ver"),
            models.Index(fields=["station", "received_at"], name="result_station"),
        ]

    def __str__(self) -> str:
        return f"result {self.message_id} ({self.verification})"

    @property
    def counts(self) -> bool:
        return self.verification == self.Verification.VERIFIED

    @property
    def rejection_reason_display(self) -> str:
        """Why the replay rejected it, in the active language."""
        return reasons.describe(self.rejection_code, self.rejection_params, self.rejection_reason)


class RefusedMessage(models.Model):
    """A message from a station the shell refused (bad signature, unknown station, ...), kept
    so the refusal and its reason can be shown and audited; it never takes effect."""

    station = models.ForeignKey(
        Station, null=True, blank=True, on_delete=models.PROTECT, related_name="refusals"
    )
    curve_public_key = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=32)
    message_id = models.CharField(max_length=64, blank=True)
    # the bridge error code the station was told
    code = models.CharField(max_length=64)
    # bilingual text (audit trail); the finer reason code and its parameters (pages)
    reason = models.TextField()
    reason_code = models.CharField(max_length=32, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    # what the message claimed (user, scenario, score), for whoever looks into the refusal
    claimed = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["-received_at", "-id"]

    @property
    def reason_display(self) -> str:
        """Why it was refused, in the active language."""
        return reasons.describe(self.reason_code, self.reason_params, self.reason)


class ReplayVideo(models.Model):
    """A result's recording as an H.264 MP4 (replayed, drawn offscreen, encoded in a background
    job: `stations.replay_video`), with the metrics timeline the replay page shows beside it."""

    class State(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RENDERING = "rendering", _("生成中")
        READY = "ready", _("可播放")
        FAILED = "failed", _("失败")

    result = models.OneToOneField(
        SessionResult, on_delete=models.CASCADE, related_name="replay_video"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    job_id = models.BigIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the MP4, relative to MEDIA_ROOT (served by the replay views, never as a public file)
    path = models.CharField(max_length=300, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    frames = models.PositiveIntegerField(default=0)
    fps = models.PositiveSmallIntegerField(default=0)
    width = models.PositiveSmallIntegerField(default=0)
    height = models.PositiveSmallIntegerField(default=0)
    duration_s = models.FloatField(default=0.0)
    # replay + drawing + encoding, wall time, and simulated seconds per wall second
    render_wall_s = models.FloatField(default=0.0)
    speed_x_real_time = models.FloatField(default=0.0)
    # events (breach, plunge, nerve, protected, force) with their time, force per frame
    timeline = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"replay video of result {self.result_id} ({self.state})"


class StationStream(models.Model):
    """The station's own view, published live into a relay room (`bridge.station_stream`).

    The shell asks (``requested``), the station answers over the bridge (``publishing`` or
    ``failed``); a stop asked in the shell (``stopping``) ends in ``stopped``. A live session
    (``live_session``) shows it: its invitees watch it on the session's watch page.
    """

    class State(models.TextChoices):
        REQUESTED = "requested", _("等待工作站")
        PUBLISHING = "publishing", _("直播中")
        STOPPING = "stopping", _("正在停止")
        STOPPED = "stopped", _("已停止")
        FAILED = "failed", _("失败")

    ACTIVE_STATES: ClassVar = (State.REQUESTED, State.PUBLISHING, State.STOPPING)

    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="streams")
    # the id on the bridge (StartStream.stream_id): 32 hex digits
    uid = models.CharField(max_length=32, unique=True)
    # the relay's names (path segments of the publish and watch URLs)
    room = models.CharField(max_length=64)
    stream = models.CharField(max_length=64)
    quality = models.CharField(max_length=8)
    state = models.CharField(max_length=12, choices=State.choices, default=State.REQUESTED)
    # the station's words when it failed (its own text, English, kept as sent)
    error = models.CharField(max_length=1000, blank=True)
    live_session = models.ForeignKey(
        "live.LiveSession", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        constraints: ClassVar = [
            # one stream at a time per station: the station publishes one view
            models.UniqueConstraint(
                fields=["station"],
                condition=models.Q(state__in=["requested", "publishing", "stopping"]),
                name="station_stream_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"stream {self.uid} of station {self.station_id}"

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE_STATES
