"""Which Panda3D display back end to load, set before the one ShowBase of a process starts.

Offscreen (servers, CI, screenshots, streaming): EGL through Mesa (``p3headlessgl``), no X
server needed; Panda3D falls back to its software renderer (``p3tinydisplay``) when EGL
cannot open a buffer. Windowed: OpenGL on X11 (``pandagl``). ``OSTEON_VIEW_DISPLAY`` names
another module to load first (e.g. ``p3tinydisplay`` to test the software path).
"""

import os

from panda3d.core import loadPrcFileData

OFFSCREEN_DISPLAY = "p3headlessgl"
WINDOWED_DISPLAY = "pandagl"
SOFTWARE_DISPLAY = "p3tinydisplay"
DISPLAY_ENV = "OSTEON_VIEW_DISPLAY"


def has_display() -> bool:
    """Whether an X display is named, so a window could open (pandagl is X11-only)."""
    return bool(os.environ.get("DISPLAY"))


def configure_display(*, offscreen: bool, size: tuple[int, int], title: str = "Osteon") -> None:
    """Load the Panda3D settings for this process; call once, before ShowBase starts."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"view size must be positive, got {width} x {height}")
    first = os.environ.get(DISPLAY_ENV) or (OFFSCREEN_DISPLAY if offscreen else WINDOWED_DISPLAY)
    lines = [
        f"load-display {first}",
        f"aux-display {SOFTWARE_DISPLAY}",
        f"window-type {'offscreen' if offscreen else 'onscreen'}",
        f"win-size {width} {height}",
        f"window-title {title}",
        # 4x multisampling smooths bone silhouettes; Panda3D drops it where unsupported
        "framebuffer-multisample 1",
        "multisamples 4",
        "audio-library-name null",
        # no joysticks or input devices on a server: keep the log free of their errors
        "notify-level-device fatal",
        "notify-level-display error",
        "sync-video false" if offscreen else "sync-video true",
    ]
    loadPrcFileData("osteon-view", "\n".join(lines) + "\n")
