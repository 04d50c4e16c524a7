"""Live sessions: an operation or a simulator session streamed through the relay to invitees.

A session names a relay room (`streaming/relay.py`) and the streams of that room it shows. Only
its creator and the people invited watch it. A session of a real operation names its patient and
is watched only once the patient's consent to the broadcast is recorded (who, when).
"""

from typing import ClassVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.records.models import Patient

# the relay's names: a room or stream is a path segment of the viewer's URL
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
name_validator = RegexValidator(NAME_PATTERN, _("只能包含英文字母、数字、下划线和连字符"))


class LiveSession(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("已排期")
        LIVE = "live", _("直播中")
        ENDED = "ended", _("已结束")

    title = models.CharField(_("标题"), max_length=200)
    room = models.CharField(_("直播间"), max_length=64, validators=[name_validator])
    # stream names in the room, in the order the page shows them (e.g. ["field", "endoscope"])
    streams = models.JSONField(_("画面"), default=list)
    patient = models.ForeignKey(
        Patient,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("患者"),
    )
    consent_recorded = models.BooleanField(_("已记录患者知情同意"), default=False)
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("知情同意记录人"),
    )
    consent_recorded_at = models.DateTimeField(_("知情同意记录时间"), null=True, blank=True)
    # None: an ad hoc session, live from its creation
    scheduled_start = models.DateTimeField(_("计划开始时间"), null=True, blank=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("发起人"),
    )
    invitees = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="live_invitations",
        verbose_name=_("受邀专家"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("手术直播")
        verbose_name_plural = _("手术直播")
        indexes: ClassVar = [
            models.Index(fields=["created_by", "created_at"], name="live_creator_created"),
        ]
        constraints: ClassVar = [
            # consent is a fact with an author and a time, or not recorded at all
            models.CheckConstraint(
                condition=models.Q(
                    consent_recorded=False,
                    consent_recorded_by__isnull=True,
                    consent_recorded_at__isnull=True,
                )
                | models.Q(
                    consent_recorded=True,
                    consent_recorded_by__isnull=False,
                    consent_recorded_at__isnull=False,
                ),
                name="live_consent_has_author_and_time",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def needs_consent(self) -> bool:
        """A real operation (a patient is named) not yet covered by a recorded consent."""
        return self.patient_id is not None and not self.consent_recorded


class LiveRecording(models.Model):
    """One MP4 the relay recorded of a session's stream (one encoder run: a source restart
    starts a new file), checked with ffprobe when it was attached (`services.attach_recordings`).
    """

    session = models.ForeignKey(
        LiveSession,
        on_delete=models.PROTECT,
        related_name="recordings",
        verbose_name=_("手术直播"),
    )
    stream = models.CharField(_("画面"), max_length=64, validators=[name_validator])
    # relative to OSTEON_LIVE_RECORDINGS_DIR: <room>/<stream>-<UTC time>.mp4; served by the
    # recording view after an access check, never as a public file
    path = models.CharField(_("文件"), max_length=300, unique=True)
    started_at = models.DateTimeField(_("开始录制时间"))
    # where the file's time 0 sits on the stream's live timeline (what a viewer's
    # video.currentTime showed): drawings are stamped with that timeline [s]
    media_start_s = models.FloatField(_("直播时间轴起点（秒）"), default=0.0)
    duration_s = models.FloatField(_("时长（秒）"))
    size_bytes = models.BigIntegerField(_("大小（字节）"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("直播录像")
        verbose_name_plural = _("直播录像")
        ordering = ("started_at", "stream", "pk")
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(duration_s__gt=0), name="live_recording_has_duration"
            ),
        ]

    def __str__(self) -> str:
        return self.path


class LiveAnnotation(models.Model):
    """A drawing an invitee or the creator made over one stream of a live session: an arrow, a
    circle or a freehand stroke, in coordinates normalised to the picture (0..1), stamped with
    the stream's media time when it was drawn (the viewer's video.currentTime), so it is shown
    again over the recording at that moment. Cleared by its author (kept, marked cleared)."""

    class Shape(models.TextChoices):
        FREEHAND = "freehand", _("画笔")
        ARROW = "arrow", _("箭头")
        CIRCLE = "circle", _("圆圈")

    session = models.ForeignKey(
        LiveSession,
        on_delete=models.PROTECT,
        related_name="annotations",
        verbose_name=_("手术直播"),
    )
    stream = models.CharField(_("画面"), max_length=64, validators=[name_validator])
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("标注人"),
    )
    shape = models.CharField(_("形状"), max_length=16, choices=Shape.choices)
    # [[x, y], ...] in 0..1 of the picture's width and height: an arrow is [tail, head], a
    # circle [centre, a point on the rim], a freehand stroke its points in order
    points = models.JSONField(_("坐标"))
    color = models.CharField(_("颜色"), max_length=7)
    media_time_s = models.FloatField(_("画面时间（秒）"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    cleared_at = models.DateTimeField(_("清除时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("直播标注")
        verbose_name_plural = _("直播标注")
        ordering = ("created_at", "pk")
        indexes: ClassVar = [
            models.Index(fields=["session", "created_at"], name="live_annotation_session"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(media_time_s__gte=0), name="live_annotation_media_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}/{self.stream}/{self.shape}"
