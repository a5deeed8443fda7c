"""The import page refuses oversized uploads while they stream in, never holding them in memory."""

import tracemalloc

import pytest
from django.core.files.uploadhandler import StopUpload
from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory

from pool.models import Image
from pool.uploads import SizeLimitedUploadHandler
from pool.views import import_images
from tests.pool.conftest import png_bytes

pytestmark = pytest.mark.django_db

BOUNDARY = "----pool-upload-test"
MIB = 2**20


class RecordingStream:
    """A request body read from disk, remembering how much of it the server read."""

    def __init__(self, path):
        self.handle = path.open("rb")
        self.read_bytes = 0

    def read(self, size=-1):
        data = self.handle.read(size)
        self.read_bytes += len(data)
        return data

    def readline(self, size=-1):
        data = self.handle.readline(size)
        self.read_bytes += len(data)
        return data


def write_multipart(path, files, fields) -> int:
    """A multipart/form-data body on disk: (name, size or bytes) files; big ones streamed."""
    with path.open("wb") as out:
        for name, value in fields.items():
            out.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        for name, content in files:
            out.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            )
            if isinstance(content, bytes):
                out.write(content)
            else:  # a file of that many bytes, looking like a PNG to anyone sniffing
                out.write(b"\x89PNG\r\n\x1a\n")
                chunk = b"\x00" * MIB
                for _ in range(content // MIB):
                    out.write(chunk)
            out.write(b"\r\n")
        out.write(f"--{BOUNDARY}--\r\n".encode())
    return path.stat().st_size


def post(body_path, size: int, user) -> tuple[WSGIRequest, RecordingStream]:
    stream = RecordingStream(body_path)
    environ = RequestFactory()._base_environ(
        REQUEST_METHOD="POST",
        PATH_INFO="/staff/import/",
        CONTENT_TYPE=f"multipart/form-data; boundary={BOUNDARY}",
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": stream},
    )
    request = WSGIRequest(environ)
    request.user = user
    request._dont_enforce_csrf_checks = True
    return request, stream


def test_it_refuses_an_upload_over_the_limit_from_its_content_length(tmp_path, staff, settings):
    settings.IMAGE_UPLOAD_MAX_BYTES = 4 * MIB
    body = tmp_path / "body"
    size = write_multipart(body, [("big.png", 5 * MIB)], {"truth": "real"})
    request, stream = post(body, size, staff)
    response = import_images(request)
    assert response.status_code == 413
    assert b"over the 4 MiB limit (IMAGE_UPLOAD_MAX_BYTES)" in response.content
    assert stream.read_bytes == 0
    assert Image.objects.count() == 0


def test_it_skips_a_file_over_the_limit_as_it_streams_and_keeps_the_others(
    tmp_path, staff, settings
):
    settings.IMAGE_MAX_FILE_BYTES = 8 * MIB
    body = tmp_path / "body"
    files = [("big.png", 96 * MIB), ("small.png", png_bytes(1))]
    size = write_multipart(body, files, {"truth": "real", "source": "upload"})
    request, stream = post(body, size, staff)
    tracemalloc.start()
    try:
        response = import_images(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    content = response.content.decode()
    assert (
        '<tr class="outcome-failed"><td>big.png</td><td>failed</td>'
        "<td>file is over the 8 MiB limit (IMAGE_MAX_FILE_BYTES)</td></tr>"
    ) in content
    assert '<tr class="outcome-imported"><td>small.png</td>' in content
    assert Image.objects.filter(source="upload").count() == 1
    assert stream.read_bytes == size  # read through to the end, to import the file after it
    # 96 MiB went through; Python never held more than a few chunks of it at once.
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_it_stops_the_whole_upload_once_more_arrives_than_allowed(settings):
    settings.IMAGE_UPLOAD_MAX_BYTES = 3 * 64 * 1024
    settings.IMAGE_MAX_FILE_BYTES = 10 * MIB
    handler = SizeLimitedUploadHandler()
    chunk = b"\x00" * 64 * 1024
    for name in ("a.png", "b.png"):
        handler.new_file("files", name, "image/png", None)
        if name == "a.png":
            assert handler.receive_data_chunk(chunk, 0) == chunk
            assert handler.receive_data_chunk(chunk, len(chunk)) == chunk
    assert handler.receive_data_chunk(chunk, 0) == chunk  # b.png: 3 chunks in all, the limit
    with pytest.raises(StopUpload) as stop:
        handler.receive_data_chunk(b"\x00", len(chunk))
    assert stop.value.connection_reset and handler.stopped
    assert handler.refused == []
