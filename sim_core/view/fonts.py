"""Finding a font that can draw Chinese, so people-facing text never renders as boxes."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# where Debian puts the fonts the Makefile installs (fonts-noto-cjk, fonts-wqy-*): used when
# fontconfig's `fc-match` is not there; the number is the face inside a .ttc collection
_KNOWN_CJK_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # face 2 = Simplified Chinese
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
)


@dataclass(frozen=True)
class FontFace:
    path: Path
    face_index: int


def find_cjk_font() -> FontFace | None:
    """A sans-serif font face covering Simplified Chinese, or None when the system has none."""
    fc_match = shutil.which("fc-match")
    if fc_match is not None:
        # ask fontconfig for a face whose language coverage includes zh-cn, not just any fallback
        result = subprocess.run(
            [fc_match, "--format=%{file}|%{index}|%{lang}", "sans-serif:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        file_name, _, rest = result.stdout.partition("|")
        index_text, _, langs = rest.partition("|")
        if result.returncode == 0 and "zh-cn" in langs.split("|") and Path(file_name).is_file():
            return FontFace(Path(file_name), int(index_text or 0))
    for file_name, index in _KNOWN_CJK_FONTS:
        if Path(file_name).is_file():
            return FontFace(Path(file_name), index)
    return None
