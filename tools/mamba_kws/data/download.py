"""Fetching the official Speech Commands v0.02 archive: resumable, hash-checked, extracted once.

The download goes to <cache>/speech_commands_v0.02.tar.gz.part and resumes from there with an HTTP
Range request; the finished file is checked against its SHA-256 (from TensorFlow Datasets' and
torchaudio's published checksums) before it is extracted into <cache>/speech_commands_v0.02/.
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DataError

SC_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SC_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
SC_DIRNAME = "speech_commands_v0.02"
EXTRACTED = ".extracted"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str | None, *, progress: bool = True,
                  timeout: float = 60.0) -> Path:
    """Download `url` to `dest`, resuming `dest`.part; check the SHA-256. DataError on any failure."""
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already complete (or longer than the file)
            resp = None
        else:
            raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason} (no network? use the generated data set, the "
                        "default, or copy the archive to " + str(dest) + ")") from None
    if resp is not None:
        with resp:
            status = getattr(resp, "status", 200)
            mode = "ab" if (have and status == 206) else "wb"
            if mode == "wb":
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=f"downloading {dest.name}", disable=not progress)
            try:
                with part.open(mode) as f:
                    while block := resp.read(1 << 20):
                        f.write(block)
                        bar.update(len(block))
            except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
                kept = part.stat().st_size if part.exists() else 0
                raise DataError(f"download of {url} interrupted ({type(exc).__name__}); run again to resume "
                                f"from {part} ({kept} bytes kept)") from None
            finally:
                bar.close()
            if total is not None and part.stat().st_size < total:
                raise DataError(f"download of {url} ended early ({part.stat().st_size} of {total} bytes); "
                                f"run again to resume from {part}")
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256:
            part.unlink()
            raise DataError(f"{url}: SHA-256 mismatch (expected {sha256}, got {got}); the corrupt download "
                            "was deleted, run again to fetch it afresh")
    part.replace(dest)
    return dest


def extract_archive(archive: Path, dest: Path, *, progress: bool = True) -> Path:
    """Extract a .tar.gz into dest (via dest.tmp, so a crash leaves no half data set)."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=not progress):
                tar.extract(m, tmp, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot extract {archive}: {exc}; delete it and download again") from None
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    (dest / EXTRACTED).write_text(archive.name + "\n")
    return dest


def download_speech_commands(cache_dir: Path, *, url: str = SC_URL, sha256: str | None = SC_SHA256,
                             progress: bool = True, keep_archive: bool = False) -> Path:
    """<cache_dir>/speech_commands_v0.02/, downloaded and extracted if not there yet."""
    cache_dir = Path(cache_dir)
    dest = cache_dir / SC_DIRNAME
    if (dest / EXTRACTED).is_file():
        return dest
    archive = download_file(url, cache_dir / f"{SC_DIRNAME}.tar.gz", sha256, progress=progress)
    extract_archive(archive, dest, progress=progress)
    if not keep_archive:
        archive.unlink()
    return dest
