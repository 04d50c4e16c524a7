"""Websocket routes of the live pages; each app's consumer is mounted here."""

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
