"""Live sessions: streamed operations and simulator sessions, viewers, voice, drawings."""
