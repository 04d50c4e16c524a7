"""ffmpeg streaming of simulated and real surgery to remote experts (not built yet)."""
