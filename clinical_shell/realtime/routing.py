"""Websocket routes of the live pages; each app's consumer is mounted here."""

from django.urls import URLPattern, URLResolver, path

from clinical_shell.realtime.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    # one socket per page for every topic (apps publish through realtime.events)
    path("ws/live/", LiveConsumer.as_asgi()),
]
