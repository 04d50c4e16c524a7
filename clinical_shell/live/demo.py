"""The demo's live session: a simulator teaching session in the demo relay's room, made through
the service by a center surgeon, with the center's other surgeons and a county surgeon invited.
Skipped when live sessions exist or the region lacks the staff it needs.

`osteon demo` runs the relay (`streaming.relay`) with this room's streams as ffmpeg test
pictures (`osteon.demo.DEMO_RELAY_ROOM`), so the watch page plays where there is no camera.
"""

from django.contrib.auth.models import User

from clinical_shell.live import services
from clinical_shell.live.models import LiveSession
from clinical_shell.network.models import Institution, Membership, Role

DEMO_ROOM = "demo-or"
DEMO_STREAMS = ("field", "endoscope")


def _surgeons(level: str) -> list[User]:
    rows = (
        Membership.objects.filter(role=Role.SURGEON, active=True, institution__level=level)
        .select_related("person__user")
        .order_by("pk")
    )
    return [row.person.user for row in rows]


def load_live_demo() -> int:
    """One ad hoc session live now (no patient: a simulator session needs no consent)."""
    if LiveSession.objects.exists():
        return 0
    center = _surgeons(Institution.Level.CENTER)
    county = _surgeons(Institution.Level.COUNTY)
    if not center or not county:
        return 0
    services.create_live_session(
        actor=center[0],
        data=services.LiveSessionIn(
            title="腰椎椎弓根螺钉 模拟训练示教",
            room=DEMO_ROOM,
            streams=list(DEMO_STREAMS),
            invitees=[*center[1:3], county[0]],
        ),
    )
    return 1
