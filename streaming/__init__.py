"""ffmpeg streaming of simulated and real surgery to remote experts.

replay_video  a recorded session as an MP4 (engine replay, Panda3D offscreen, ffmpeg)
sources       ffmpeg pipelines: test source, camera URL/device, raw frames -> low-latency fMP4
fmp4          the fragmented-MP4 splitter (init segment, keyframe-marked fragments)
tokens        short-lived HMAC admission tokens for viewers
relay         the live relay: one ffmpeg per stream and quality, WebSocket fan-out
(docs/streaming.md)
"""
