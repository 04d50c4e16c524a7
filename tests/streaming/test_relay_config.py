"""The relay's config file: what it accepts, and the mistakes it refuses before starting."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from streaming_helpers import ROOT

from streaming.relay import ConfigError, load_config
from streaming.sources import SourceSpec


def write(tmp_path: Path, config: dict[str, Any], secret: bytes = b"k" * 40) -> Path:
    (tmp_path / "relay.secret").write_bytes(secret + b"\n")
    path = tmp_path / "relay.json"
    path.write_text(json.dumps({"secret_file": "relay.secret", **config}), encoding="utf-8")
    return path


CAMERA = {
    "source": {"kind": "url", "url": "rtsp://cam/1", "input_options": {"rtsp_transport": "tcp"}}
}


def test_it_reads_rooms_streams_and_the_secret_beside_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"rooms": {"or-3": {"field": {**CAMERA, "qualities": ["720p", "360p"]}}}}
    )
    config = load_config(path)
    assert config.secret == b"k" * 40
    stream = config.rooms["or-3"]["field"]
    assert stream.qualities == ("720p", "360p")
    assert stream.source == SourceSpec(
        "url", url="rtsp://cam/1", input_options={"rtsp_transport": "tcp"}
    )


def test_a_published_stream_has_no_source_for_the_relay_to_run(tmp_path: Path) -> None:
    publish = {"source": {"kind": "publish"}, "qualities": ["720p", "360p"]}
    config = load_config(write(tmp_path, {"rooms": {"station-4": {"view": publish}}}))
    stream = config.rooms["station-4"]["view"]
    assert stream.source is None and stream.qualities == ("720p", "360p")


def test_record_dir_is_beside_the_config_unless_absolute(tmp_path: Path) -> None:
    rooms = {"or-3": {"field": CAMERA}}
    assert load_config(write(tmp_path, {"rooms": rooms})).record_dir is None
    config = load_config(write(tmp_path, {"rooms": rooms, "record_dir": "rec"}))
    assert config.record_dir == tmp_path / "rec"
    config = load_config(write(tmp_path, {"rooms": rooms, "record_dir": "/srv/rec"}))
    assert config.record_dir == Path("/srv/rec")


@pytest.mark.parametrize(
    ("config", "secret", "message"),
    [
        ({"rooms": {"or-3": {"field": CAMERA}}}, b"short", "needs at least 32"),
        ({"rooms": {}}, b"k" * 40, "at least one room"),
        ({"rooms": {"or 3": {"field": CAMERA}}}, b"k" * 40, "rooms.or 3"),
        ({"rooms": {"or-3": {"field": {**CAMERA, "qualities": ["4k"]}}}}, b"k" * 40, "qualities"),
        ({"rooms": {"or-3": {"sim": {"source": {"kind": "raw"}}}}}, b"k" * 40, "not raw"),
        ({"rooms": {"or-3": {"x": {"source": {"kind": "url"}}}}}, b"k" * 40, "needs a url"),
        ({"rooms": {"or-3": {"field": CAMERA}}, "queue": 3}, b"k" * 40, "unknown fields"),
        ({"rooms": {"or-3": {"field": CAMERA}}, "record_dir": ""}, b"k" * 40, "record_dir"),
        (
            {"rooms": {"sim-1": {"view": {"source": {"kind": "publish", "url": "rtsp://x"}}}}},
            b"k" * 40,
            "a publish source has no other fields",
        ),
    ],
)
def test_it_refuses_a_config_it_cannot_run(
    tmp_path: Path, config: dict[str, Any], secret: bytes, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, config, secret))


def test_the_command_exits_2_with_one_line_on_a_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, {"rooms": {}})
    done = subprocess.run(
        [sys.executable, "-m", "streaming.relay", "--port", "0", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "relay: rooms: expected an object with at least one room"
