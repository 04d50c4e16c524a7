"""ffmpeg streaming of simulated and real surgery to remote experts.

replay_video  a recorded session as an MP4 (engine replay, Panda3D offscreen, ffmpeg)
sources       ffmpeg pipelines: test source, camera URL/device, raw frames -> low-latency fMP4
fmp4          the fragmented-MP4 splitter (init segment, keyframe-marked fragments)
tokens        short-lived HMAC admission tokens for viewers, publish tokens for stations
relay         the live relay: one ffmpeg per stream and quality, or a station publishing; fan-out
publisher     a station's side: raw frames -> ffmpeg -> the relay's publish endpoint
(docs/streaming.md)
"""
