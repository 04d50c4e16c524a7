"""ZeroMQ messages between simulator stations and the clinical shell (not built yet)."""
