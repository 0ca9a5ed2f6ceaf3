"""Download of the Speech Commands archive against a local HTTP server (no internet needed):
full download + extraction, resume from a .part, an interrupted transfer, hash mismatch, no network."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.data.download import download_file, download_speech_commands
from mamba_kws.errors import DataError


def _archive() -> bytes:
    """A small .tar.gz in the Speech Commands layout (noise so that gzip cannot shrink it much)."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [("./yes/a_nohash_0.wav", rng.bytes(60_000)), ("./no/b_nohash_0.wav", rng.bytes(60_000)),
                           ("./validation_list.txt", b"yes/a_nohash_0.wav\n"), ("./testing_list.txt", b"")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Server:
    """Serves one blob at /sc.tar.gz with HTTP Range support; can cut a response short."""

    def __init__(self, blob: bytes) -> None:
        self.blob, self.requests, self.cut_after = blob, [], None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if self.path != "/sc.tar.gz":
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(server.blob):
                    self.send_error(416)
                    return
                body = server.blob[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.blob) - 1}/{len(server.blob)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(body[: server.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    server.cut_after = None
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sc.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server(_archive())
    yield s
    s.close()


def test_full_download_and_extract(server, tmp_path):
    sha = hashlib.sha256(server.blob).hexdigest()
    root = download_speech_commands(tmp_path, url=server.url, sha256=sha, progress=False)
    assert root == tmp_path / "speech_commands_v0.02"
    assert (root / "yes" / "a_nohash_0.wav").stat().st_size == 60_000
    assert (root / "validation_list.txt").read_text() == "yes/a_nohash_0.wav\n"
    assert server.requests == [None]
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob("*.tar.gz"))
    download_speech_commands(tmp_path, url=server.url, sha256=sha, progress=False)
    assert len(server.requests) == 1  # extracted already: no second download


def test_resume_from_partial_file(server, tmp_path):
    sha = hashlib.sha256(server.blob).hexdigest()
    dest = tmp_path / "sc.tar.gz"
    half = len(server.blob) // 2
    (tmp_path / "sc.tar.gz.part").write_bytes(server.blob[:half])
    download_file(server.url, dest, sha, progress=False)
    assert server.requests == [f"bytes={half}-"]
    assert dest.read_bytes() == server.blob


def test_interrupted_transfer_then_resume(server, tmp_path):
    sha = hashlib.sha256(server.blob).hexdigest()
    dest = tmp_path / "sc.tar.gz"
    server.cut_after = 50_000
    with pytest.raises(DataError, match="run again to resume"):
        download_file(server.url, dest, sha, progress=False, timeout=10)
    part = tmp_path / "sc.tar.gz.part"
    assert part.stat().st_size == 50_000
    download_file(server.url, dest, sha, progress=False, timeout=10)
    assert server.requests == [None, "bytes=50000-"]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha


def test_hash_mismatch_is_a_clear_error(server, tmp_path):
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download_speech_commands(tmp_path, url=server.url, sha256="0" * 64, progress=False)
    assert not list(tmp_path.rglob("*.part")) and not (tmp_path / "speech_commands_v0.02").exists()


def test_network_failure_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot download"):
        download_file(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path / "x.tar.gz", None, progress=False, timeout=5)


def test_corrupt_archive_is_a_clear_error(tmp_path):
    s = _Server(b"this is not a tar file" * 100)
    try:
        with pytest.raises(DataError, match="cannot extract"):
            download_speech_commands(tmp_path, url=s.url, sha256=None, progress=False)
    finally:
        s.close()
    assert not Path(tmp_path / "speech_commands_v0.02").exists()
