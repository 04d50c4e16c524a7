"""Websocket routes of the live pages; each app's consumer is mounted here."""

from django.urls import URLPattern, URLResolver, path

from clinical_shell.live.consumers import TelestrationConsumer
from clinical_shell.live.voice import VoiceSignallingConsumer
from clinical_shell.realtime.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    # one socket per page for every topic (apps publish through realtime.events)
    path("ws/live/", LiveConsumer.as_asgi()),
    # drawings over a live session's streams (telestration), checked on every message
    path("ws/live/sessions/<int:session_id>/draw/", TelestrationConsumer.as_asgi()),
    # WebRTC signalling for the session's voice (offers, answers, candidates), checked likewise
    path("ws/live/sessions/<int:session_id>/voice/", VoiceSignallingConsumer.as_asgi()),
]
