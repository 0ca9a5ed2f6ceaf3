"""Checkpoints: the weights together with the config they were trained with.

Format (torch.save of a dict): {"format": "mamba_kws/1", "config": KWSConfig.to_dict(),
"model": state_dict, "epoch": int, "metrics": {...}, "optimizer": ..., "scheduler": ...}.
The config travels with the weights, so export and evaluation rebuild the exact model; passing
a different config is checked key by key against the stored one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import KWSConfig, config_from_dict
from .errors import CheckpointError
from .model import MambaKWS, build_model

FORMAT = "mamba_kws/1"


def save_checkpoint(path: str | Path, model: MambaKWS, cfg: KWSConfig, **extra: Any) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "config": cfg.to_dict(), "model": model.state_dict(), **extra}
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(p)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p} (train one with: python tools/train.py)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(f"{p}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a mamba_kws checkpoint (expected format {FORMAT})")
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{p}: incomplete checkpoint (no config or no weights); train it again")
    return state


def load_checkpoint(path: str | Path, cfg: KWSConfig | None = None) -> tuple[MambaKWS, KWSConfig, dict]:
    """Rebuild the model in eval mode. If `cfg` is given, its model and labels must match."""
    state = read_checkpoint(path)
    stored = config_from_dict(state["config"], f"{path} (stored config)")
    if cfg is not None:
        if cfg.model != stored.model:
            diffs = [
                f"model.{k}: checkpoint {getattr(stored.model, k)!r} vs config {getattr(cfg.model, k)!r}"
                for k in stored.model.__dataclass_fields__
                if getattr(stored.model, k) != getattr(cfg.model, k)
            ]
            raise CheckpointError(f"{path} does not match the config: {'; '.join(diffs)}")
        if tuple(cfg.labels) != tuple(stored.labels):
            raise CheckpointError(f"{path} does not match the config: labels differ")
    model = build_model(stored)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, stored, state
