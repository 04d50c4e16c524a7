"""The request-size limit for uploads, enforced while the body is read.

Uploaded files go to disk as they arrive (Django's temporary-file handler; only files under
FILE_UPLOAD_MAX_MEMORY_SIZE stay in memory). `SizeLimitedUploadHandler` counts the bytes of
every file in the request and stops reading past settings.OSTEON_UPLOAD_MAX_BYTES: an upload
that declares a larger Content-Length is refused before a byte of it is read, and one that lies
(or is chunked) is cut off at the limit. Whatever part of it had reached disk is deleted with the
request's temporary files, so a refused upload leaves nothing behind.

`UploadLimitMiddleware` parses a multipart body before the CSRF check and the view read it, so
the refusal is one clear 413 (problem details for the API and for scripts, a page otherwise)
instead of a CSRF failure or a view running with half the files. Under ASGI (uvicorn), Django
spools the whole body before either runs: `refuse_oversized_bodies` wraps the ASGI application
and keeps the same limit while the body arrives.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext

from clinical_shell.errors import DomainError, problem_response, problem_title


class UploadTooLargeError(DomainError):
    status = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            "upload_too_large",
            gettext("上传内容超过上限(%(limit)s MiB)") % {"limit": limit_bytes // 2**20},
        )


class SizeLimitedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: passes every chunk on, counting; raises past the limit."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # noqa: N803 - the name Django calls it by
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.limit_bytes = int(settings.OSTEON_UPLOAD_MAX_BYTES)
        self.received_bytes = 0
        # the declared length is checked first: nothing of an announced giant is read
        if content_length > self.limit_bytes:
            raise UploadTooLargeError(self.limit_bytes)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received_bytes += len(raw_data)
        if self.received_bytes > self.limit_bytes:
            raise UploadTooLargeError(self.limit_bytes)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) keeps the file


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


class UploadLimitMiddleware:
    """Reads a multipart body up front (see the module docstring); refuses it with 413."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type == "multipart/form-data":
            try:
                request.POST  # noqa: B018 - parsing is the point; the result is cached on request
            except UploadTooLargeError as refused:
                # the parser closed (and so deleted) every temporary file it had opened
                if _wants_problem(request):
                    return problem_response(
                        status=refused.status,
                        code=refused.code,
                        title=problem_title(refused.status),
                        detail=refused.message,
                    )
                return render(request, "error.html", {"error": refused}, status=refused.status)
        return self.get_response(request)


class _BodyTooLargeError(Exception):
    pass


def _asgi_language(scope: dict[str, Any]) -> str:
    accept = dict(scope.get("headers") or []).get(b"accept-language", b"").decode("latin-1")
    for part in accept.split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("en"):
            return "en"
        if code.startswith("zh"):
            break
    return str(settings.LANGUAGE_CODE)


async def _send_too_large(scope: dict[str, Any], send: Any) -> None:
    limit = int(settings.OSTEON_UPLOAD_MAX_BYTES)
    with translation.override(_asgi_language(scope)):
        refused = UploadTooLargeError(limit)
        response = problem_response(
            status=413, code=refused.code, title=problem_title(413), detail=refused.message
        )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", response["Content-Type"].encode()),
                (b"content-length", str(len(response.content)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.content})


def refuse_oversized_bodies(app: Any) -> Any:
    """ASGI wrapper: Django's ASGI handler reads a whole request body into a spooled temporary
    file before any upload handler runs, so under uvicorn the limit is kept here, on the way in:
    a declared Content-Length over the limit is refused before reading, and a body (chunked or
    lying) is cut off once it passes the limit. Answers 413 problem details either way."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        limit = int(settings.OSTEON_UPLOAD_MAX_BYTES)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_too_large(scope, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLargeError
            return message

        try:
            await app(scope, counting_receive, send)
        except _BodyTooLargeError:
            # raised while Django reads the body, before it answers: nothing was sent yet
            await _send_too_large(scope, send)

    return guarded
