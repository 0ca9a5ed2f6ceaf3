"""`prepare_data`: one call that gives training its splits, whatever the source."""

from __future__ import annotations

from pathlib import Path

from ..config import KWSConfig
from ..errors import DataError
from ..paths import cache_dir as resolve_cache
from .clips import DataSplits
from .download import download_speech_commands
from .generate import ensure_generated
from .speech_commands import HOW_TO_GET, load_speech_commands


def prepare_data(cfg: KWSConfig, source: str | Path | None = None, *, download: bool = False,
                 cache_dir: Path | None = None, progress: bool = True) -> DataSplits:
    """Train/val/test clips and training noise.

    source None or "generated": the generated set (made and cached in <cache_dir>/generated/ if missing;
    cache_dir defaults to mamba_kws.paths.cache_dir()). A path: a Speech Commands v2 directory. download=True: fetch the
    official archive into <cache_dir>/speech_commands_v0.02 first and read that.
    """
    cache = resolve_cache(cache_dir)
    if download:
        root = download_speech_commands(cache, progress=progress)
        return load_speech_commands(root, cfg, progress=progress)
    if source is None or str(source) == "generated":
        root, gen_summary = ensure_generated(cfg, cache, progress=progress)
        splits = load_speech_commands(root, cfg, progress=progress, source=f"generated:{root}")
        splits.summary["generator"] = {k: gen_summary.get(k) for k in
                                       ("generator_version", "seed", "engines", "speakers_by_engine", "seconds")}
        return splits
    root = Path(source)
    if not root.is_dir():
        raise DataError(f"data set not found: {root}; {HOW_TO_GET}")
    return load_speech_commands(root, cfg, progress=progress)
