"""Upload limits hold while the body is read: an oversized upload is refused without being held
in memory, and leaves nothing behind (no index row, no stored file, no temporary file).

The request body is a file on disk handed to the WSGI handler as its input stream, as a server
would, so the peak memory measured (tracemalloc) is the shell's own, not the test's.
"""

import json
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.client import ClientHandler
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.imaging.models import Instance, Study

sys.path.insert(0, str(Path(__file__).parent / "imaging"))
from dicom_samples import ct_series

MIB = 2**20


@pytest.fixture
def stores(settings: Any, tmp_path: Path) -> tuple[Path, Path]:
    """(DICOM store, directory of the request's temporary upload files), both empty."""
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    return tmp_path / "dicom", tmp_path / "upload-tmp"


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _write_multipart(
    path: Path, boundary: str, fields: dict[str, str], files: list[tuple[str, bytes | int]]
) -> int:
    """A multipart body on disk; a file given as an int is that many bytes, written in chunks."""
    with open(path, "wb") as out:
        for name, value in fields.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        for filename, content in files:
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            )
            if isinstance(content, bytes):
                out.write(content)
            else:
                chunk = b"\x5a" * MIB
                for _ in range(content // MIB):
                    out.write(chunk)
            out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
    return path.stat().st_size


def _post_from_disk(
    user: User, body_path: Path, boundary: str, size: int, *, accept: str
) -> tuple[Any, int]:
    """POST /imaging/upload/ with the body streamed from disk; (response, peak bytes traced)."""
    session = Client()
    session.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
    cookie = session.cookies["sessionid"].value
    handler = ClientHandler(enforce_csrf_checks=False)
    # warm up (middleware, imports, templates) so the peak below is the upload's alone
    with open(body_path, "rb") as stream:
        warm_up = _environ(stream, boundary, 0, cookie, accept)
        handler({**warm_up, "REQUEST_METHOD": "GET", "PATH_INFO": "/imaging/"})
    with open(body_path, "rb") as stream:
        environ = _environ(stream, boundary, size, cookie, accept)
        tracemalloc.start()
        try:
            response = handler(environ)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return response, peak


def _environ(
    stream: BinaryIO, boundary: str, size: int, cookie: str, accept: str
) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/imaging/upload/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(size),
        "HTTP_COOKIE": f"sessionid={cookie}",
        "HTTP_ACCEPT": accept,
        "HTTP_ACCEPT_LANGUAGE": "en",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


@pytest.fixture
def body(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "body.bin"
    yield path, uuid.uuid4().hex
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_an_oversized_upload_is_refused_without_being_held_in_memory(
    settings: Any,
    shell_network: Network,
    personas: Personas,
    stores: tuple[Path, Path],
    body: tuple[Path, str],
    accept: str,
) -> None:
    settings.OSTEON_UPLOAD_MAX_BYTES = 8 * MIB
    path, boundary = body
    # a good slice first, then 48 MiB: the good one must not go in either (one refused request)
    good = ct_series(1, patient_id=SHUANGBAI_MAN_ID)[0]
    size = _write_multipart(
        path,
        boundary,
        {"institution": str(shell_network.shuangbai.pk)},
        [("good.dcm", good), ("huge.bin", 48 * MIB)],
    )
    response, peak = _post_from_disk(personas.county_surgeon, path, boundary, size, accept=accept)
    print(f"refused upload of {size / MIB:.0f} MiB: peak traced {peak / MIB:.2f} MiB")
    assert response.status_code == 413
    if accept == "application/json":
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(response.content)["code"] == "upload_too_large"
    else:
        assert "8 MiB" in response.content.decode()
    # held in memory: a small fraction of the upload, far below even the limit
    assert peak < 2 * MIB, f"peak {peak / MIB:.1f} MiB for a {size / MIB:.0f} MiB upload"
    dicom_root, temporary = stores
    assert not Instance.objects.exists() and not Study.objects.exists()
    assert _files_under(dicom_root) == [] and _files_under(temporary) == []


def test_a_big_file_under_the_request_limit_streams_to_disk_and_is_refused_by_name(
    settings: Any,
    shell_network: Network,
    personas: Personas,
    stores: tuple[Path, Path],
    body: tuple[Path, str],
) -> None:
    settings.OSTEON_UPLOAD_MAX_BYTES = 64 * MIB
    settings.OSTEON_DICOM_FILE_MAX_BYTES = 4 * MIB
    path, boundary = body
    good = ct_series(1, patient_id=SHUANGBAI_MAN_ID)[0]
    size = _write_multipart(
        path,
        boundary,
        {"institution": str(shell_network.shuangbai.pk)},
        [("big.bin", 24 * MIB), ("good.dcm", good)],
    )
    response, peak = _post_from_disk(
        personas.county_surgeon, path, boundary, size, accept="application/json"
    )
    print(f"upload of {size / MIB:.0f} MiB, 24 MiB file refused: peak {peak / MIB:.2f} MiB")
    assert response.status_code == 200, response.content
    report = json.loads(response.content)
    assert [r["name"] for r in report["refused"]] == ["big.bin"]
    assert "4 MiB" in report["refused"][0]["reason"]
    assert [s["name"] for s in report["stored"]] == ["good.dcm"]
    # the 24 MiB file went to a temporary file, was never read whole, and is gone afterwards;
    # what is traced is the good slice's parsing (a few MiB: its pixels are decoded to check them)
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"
    dicom_root, temporary = stores
    assert len(_files_under(dicom_root)) == 1 and _files_under(temporary) == []


def _asgi_post(app: Any, body_chunks: int, *, declared: int | None) -> tuple[int, bytes, int]:
    """POST 1 MiB chunks to /imaging/upload/ through an ASGI app; (status, body, chunks read)."""
    import asyncio

    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"\0" * MIB, "more_body": read < body_chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"accept-language", b"en")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/imaging/upload/",
        "raw_path": b"/imaging/upload/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read


def test_under_asgi_the_limit_holds_while_the_body_arrives(settings: Any) -> None:
    # uvicorn's path: Django's ASGI handler would spool the whole body before any upload handler
    from django.core.asgi import get_asgi_application

    from clinical_shell.upload_limits import refuse_oversized_bodies

    settings.OSTEON_UPLOAD_MAX_BYTES = 8 * MIB
    app = refuse_oversized_bodies(get_asgi_application())
    # announced too large: refused before a byte is read
    status, body, read = _asgi_post(app, 48, declared=48 * MIB)
    assert (status, read) == (413, 0)
    assert json.loads(body)["code"] == "upload_too_large"
    assert "8 MiB" in json.loads(body)["detail"]
    # chunked, no length: cut off once past the limit, not read to the end
    status, body, read = _asgi_post(app, 48, declared=None)
    assert status == 413 and read == 9
