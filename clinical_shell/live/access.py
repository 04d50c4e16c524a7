"""Who may watch which live session; every refusal audited.

Rule: a session is watched by its creator and the people it invites, nobody else (not even
colleagues at the same hospital: the picture may show a patient). A session of a real operation
(a patient is named) is watched only once the patient's consent to the broadcast is recorded,
and an ended session is not watched at all. Its recordings are watched by the same people, on
the same consent, during the session and after it has ended.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.live import selectors
from clinical_shell.live.models import LiveRecording, LiveSession


def access_live_session(
    user: User | AnonymousUser, session_id: int, *, manage: bool = False
) -> LiveSession:
    """The session if `user` is its creator or invited to it and it can be watched now;
    with manage=True, if `user` created it (whether or not it can be watched yet).

    Raises NotFoundError, PermissionDeniedError (not invited, not the creator), or DomainError
    when the session has ended or lacks the patient's consent; each refusal is audited
    (`live.watch` or `live.manage`, failure).
    """
    actor = user if user.is_authenticated else None
    session = selectors.live_session(session_id)
    if session is None:
        raise NotFoundError(
            "live_session_not_found", _("未找到编号为 %(id)s 的手术直播") % {"id": session_id}
        )
    if manage:
        if actor is None or session.created_by_id != actor.pk:
            _refuse(actor, session, "not_creator", action="live.manage")
            raise PermissionDeniedError("not_creator", _("只有直播发起人可以管理这场直播"))
        return session
    _check_viewer(actor, session, action="live.watch", ended_ok=False)
    return session


def access_live_recordings(user: User | AnonymousUser, session_id: int) -> LiveSession:
    """The session if `user` may watch its recordings: its creator or an invitee, once the
    patient's consent is recorded, whether the session is live or ended.

    Raises NotFoundError, PermissionDeniedError or DomainError (consent missing); each refusal
    audited (`live.recordings`, failure).
    """
    actor = user if user.is_authenticated else None
    session = selectors.live_session(session_id)
    if session is None:
        raise NotFoundError(
            "live_session_not_found", _("未找到编号为 %(id)s 的手术直播") % {"id": session_id}
        )
    _check_viewer(actor, session, action="live.recordings", ended_ok=True)
    return session


def access_live_recording(user: User | AnonymousUser, recording_id: int) -> LiveRecording:
    """One recording, for the people who may watch its session's recordings (as above)."""
    actor = user if user.is_authenticated else None
    recording = selectors.live_recording(recording_id)
    if recording is None:
        raise NotFoundError(
            "live_recording_not_found", _("未找到编号为 %(id)s 的直播录像") % {"id": recording_id}
        )
    _check_viewer(actor, recording.session, action="live.recordings", ended_ok=True)
    return recording


def _check_viewer(actor: User | None, session: LiveSession, *, action: str, ended_ok: bool) -> None:
    # invited, not ended (live pictures only), consent for a real operation
    if actor is None or not selectors.is_participant(session, actor):
        _refuse(actor, session, "not_invited", action=action)
        raise PermissionDeniedError(
            "not_invited",
            _("您不在这场直播的邀请名单中。只有发起人和受邀专家可以观看，请联系发起人邀请您。"),
        )
    if not ended_ok and session.status == LiveSession.Status.ENDED:
        _refuse(actor, session, "session_ended", action=action)
        raise DomainError("session_ended", _("这场直播已经结束，不能再观看。"))
    if session.needs_consent:
        _refuse(actor, session, "consent_missing", action=action)
        raise DomainError(
            "consent_missing",
            _(
                "这是真实患者的手术直播，尚未记录患者的知情同意，暂时不能观看。请发起人先记录知情同意。"
            ),
            status=403,
        )


def _refuse(
    actor: User | None, session: LiveSession, why: str, *, action: str = "live.watch"
) -> None:
    audit.record(
        actor=actor,
        action=action,
        success=False,
        target=session,
        patient_id=session.patient_id,
        detail={"why": why},
    )
