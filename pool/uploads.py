"""Limits on web uploads, enforced while the request body streams in, never after.

Django reads a multipart body only when the view first touches ``request.POST`` or
``request.FILES``; files over ``FILE_UPLOAD_MAX_MEMORY_SIZE`` go to a temporary file chunk by
chunk. The import page refuses a request whose ``Content-Length`` is over
``IMAGE_UPLOAD_MAX_BYTES`` before reading any of it, and puts this handler in front of
Django's own: it counts every chunk, skips a file as soon as it passes
``IMAGE_MAX_FILE_BYTES`` (the rest of that file is read and thrown away, the other files are
kept) and stops the whole upload if the body outgrows its declared length.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def request_too_large(request: HttpRequest) -> bool:
    """Whether the declared body is over the limit; nothing of the body is read."""
    return declared_length(request) > settings.IMAGE_UPLOAD_MAX_BYTES


class SizeLimitedUploadHandler(FileUploadHandler):
    """Counts the bytes of each file and of the whole upload as they arrive (see module)."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.file_limit = settings.IMAGE_MAX_FILE_BYTES
        self.total_limit = settings.IMAGE_UPLOAD_MAX_BYTES
        self.file_bytes = 0
        self.total_bytes = 0
        self.refused: list[str] = []  # names of the files skipped for their size
        self.stopped = False  # the whole upload was cut off

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.file_bytes = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.file_bytes += len(raw_data)
        self.total_bytes += len(raw_data)
        if self.total_bytes > self.total_limit:
            self.stopped = True
            raise StopUpload(connection_reset=True)
        if self.file_bytes > self.file_limit:
            self.refused.append(self.file_name or "upload")
            raise SkipFile()
        return raw_data  # the next handler (memory or temporary file) keeps it

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the uploaded file


def install(request: HttpRequest) -> SizeLimitedUploadHandler:
    """Put the limiting handler first; call before anything reads the request body."""
    handler = SizeLimitedUploadHandler(request)
    request.upload_handlers.insert(0, handler)
    return handler
