"""The relay the live tests' shell is configured with (nothing listens there)."""

RELAY_SECRET = "live-test-relay-secret-0123456789abcdefghijklmnopqrstuvwxyz"
RELAY_URL = "ws://relay.test:8765"
