"""Training checkpoints and run folders: atomic writes, resumable state, and loading any model spec.

A training run folder (``cervattn train --out RUN_DIR``) holds:

- ``last.pt``: everything needed to resume, written after every epoch. A plain ``torch.save``
  dict of tensors, numbers, strings, lists and dicts, loadable with
  ``torch.load(..., weights_only=True)``: ``model`` (state dict), ``arch``, ``args`` (the
  :class:`~cervattn.train.TrainConfig` as a dict), ``epoch`` (epochs completed), ``metrics``
  (validation metrics of that epoch), ``optimizer``, ``scheduler``, ``ema``, ``scaler``, ``rng``
  (RNG states as tensors), ``best_metric``, ``best_epoch``, ``pretrained_cfg``.
- ``best.safetensors`` + ``best.json``: the weights of the best epoch (the EMA weights when
  training with EMA) and a sidecar with ``arch``, ``args``, ``epoch``, ``metrics``,
  ``pretrained_cfg`` (input size, mean/std, label names), versions and time.
- ``log.jsonl``: one JSON line per epoch.

Every file is written to a temporary file in the same folder and moved into place with
``os.replace``, so a run killed at any moment leaves the previous complete file.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "LoadedModel",
    "atomic_write",
    "capture_rng",
    "jsonable",
    "load_model",
    "read_checkpoint",
    "restore_rng",
    "save_best",
    "save_checkpoint",
    "truncate_log",
]

BEST_WEIGHTS, BEST_SIDECAR, LAST, LOG = "best.safetensors", "best.json", "last.pt", "log.jsonl"
_TORCH_EXTS = (".pt", ".pth", ".bin", ".ckpt")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, paths as strings and tensors/arrays as lists (for JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(jsonable(obj), indent=2) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def capture_rng() -> dict[str, Any]:
    """The states of torch's, CUDA's, numpy's and Python's global RNGs, as tensors."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": int(py_version),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore the RNG states saved by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((state["python_version"], tuple(state["python"].tolist()), None))


def truncate_log(path: str | os.PathLike, epochs: int) -> None:
    """Keep the ``log.jsonl`` records of the first ``epochs`` epochs (a resumed run rewrites the rest)."""
    path = Path(path)
    if path.is_file():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        keep = "".join(ln + "\n" for ln in lines if json.loads(ln).get("epoch", 0) <= epochs)
        atomic_write(path, lambda tmp: Path(tmp).write_text(keep, encoding="utf-8"))


def save_checkpoint(path: str | os.PathLike, checkpoint: Mapping[str, Any]) -> Path:
    """``torch.save`` a checkpoint dict atomically (see the module docstring for its keys)."""
    return atomic_write(path, lambda tmp: torch.save(dict(checkpoint), tmp))


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True`` (no code runs while loading)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Checkpoint {str(path)!r} does not exist; pass a run folder written by `cervattn train` or its "
            f"{LAST}."
        ) from None


def save_best(run_dir: str | os.PathLike, model: nn.Module, sidecar: Mapping[str, Any]) -> Path:
    """Write ``best.safetensors`` (``model``'s state dict) and the ``best.json`` sidecar atomically."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": "pt", "arch": str(sidecar.get("arch", ""))}
    atomic_write(run_dir / BEST_WEIGHTS, lambda tmp: save_file(state, tmp, metadata=meta))
    write_json(run_dir / BEST_SIDECAR, sidecar)
    return run_dir / BEST_WEIGHTS


@dataclass
class LoadedModel:
    """A model and where it came from.

    Attributes:
        model: The model in eval mode, ``pretrained_cfg`` describing its input (size, mean, std,
            label names).
        name: Architecture, with the tag when loaded by name (``"rcan_densenet121.tv_in1k"``).
        source: ``"pretrained"`` (registered name and tag), ``"release"`` (folder with
            ``config.json`` + ``model.safetensors``) or ``"checkpoint"`` (training run or file).
        path: File or folder loaded, ``None`` for a registered name.
        info: The sidecar or checkpoint metadata (``args``, ``epoch``, ``metrics``), if any.
    """

    model: nn.Module
    name: str
    source: str
    path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


_SPEC_FORMS = (
    "a registered name with a pretrained tag ('rcan_densenet121.<tag>', see `cervattn models`), "
    "a release folder (config.json + model.safetensors), a training run folder (best.safetensors + "
    f"best.json, or {LAST}), or one of those files"
)


def _from_state(arch: str, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path: Path,
                img_size: int | None) -> LoadedModel:
    from .factory import create_model

    cfg = dict(meta.get("pretrained_cfg") or {})
    num_classes = int(meta.get("num_classes") or cfg.get("num_classes") or 5)
    model = create_model(arch, num_classes=num_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"The weights in {str(path)!r} do not fit architecture {arch!r}: {e}") from None
    cfg = {**model.pretrained_cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}}
    if img_size is not None:
        cfg["input_size"] = (cfg.get("input_size", (3,))[0], img_size, img_size)
    model.pretrained_cfg = model.default_cfg = cfg
    return LoadedModel(model.eval(), arch, "checkpoint", str(path), dict(meta))


def _load_safetensors(weights: Path, sidecar: Path, img_size: int | None) -> LoadedModel:
    from safetensors.torch import load_file

    if not sidecar.is_file():
        raise FileNotFoundError(
            f"{str(weights)!r} has no sidecar {sidecar.name!r} naming its architecture. Pass the run folder "
            f"written by `cervattn train`, or a release folder with config.json."
        )
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    return _from_state(meta["arch"], load_file(weights), meta, weights, img_size)


def _load_torch(path: Path, img_size: int | None) -> LoadedModel:
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping) or "model" not in ckpt or "arch" not in ckpt:
        raise ValueError(
            f"{str(path)!r} is not a cervattn checkpoint: expected a dict with the keys 'model' (state dict) "
            f"and 'arch', got {sorted(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__}."
        )
    meta = {k: v for k, v in ckpt.items() if k in ("arch", "args", "epoch", "metrics", "pretrained_cfg")}
    return _from_state(ckpt["arch"], ckpt["model"], meta, path, img_size)


def load_model(spec: str | os.PathLike, img_size: int | None = None, device: str | torch.device = "cpu",
               **kwargs: Any) -> LoadedModel:
    """Load a model for inference from a name, a release folder, or a training run or checkpoint.

    Args:
        spec: One of
            - a registered name with a pretrained tag, ``"rcan_densenet121.<tag>"`` (weights from
              :func:`cervattn.create_model` with ``pretrained=True``; also ``hf-hub:org/repo``);
            - a release folder in the Hugging Face Hub layout (``config.json`` + ``model.safetensors``,
              loaded by timm as ``local-dir:<folder>``);
            - a training run folder (``best.safetensors`` + ``best.json``; ``last.pt`` when no best
              exists), or ``best.safetensors``, ``best.json`` or a ``.pt`` checkpoint with the keys
              ``model`` and ``arch``.
        img_size: Override the input size recorded with the weights.
        device: Where to put the model.
        **kwargs: Passed to :func:`cervattn.create_model` for names and release folders.

    Returns:
        A :class:`LoadedModel` (the model in eval mode).

    Raises:
        FileNotFoundError: ``spec`` looks like a path that does not exist, or a folder without
            any of the accepted files.
        ValueError: Unknown model name, or weights that do not fit the recorded architecture.

    Examples:
        >>> loaded = load_model("runs/rcan")
        >>> loaded.model.pretrained_cfg["input_size"]
        (3, 224, 224)
    """
    from .factory import create_model

    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / BEST_WEIGHTS).is_file():
            loaded = _load_safetensors(path / BEST_WEIGHTS, path / BEST_SIDECAR, img_size)
        elif (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            overlay = {"input_size": (3, img_size, img_size)} if img_size else None
            model = create_model(f"local-dir:{path}", pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
            loaded = LoadedModel(model.eval(), model.pretrained_cfg.get("architecture", path.name), "release",
                                 str(path))
        elif (path / LAST).is_file():
            loaded = _load_torch(path / LAST, img_size)
        else:
            found = sorted(p.name for p in path.iterdir())[:10]
            raise FileNotFoundError(f"Folder {str(path)!r} holds no model (found {found}); accepted: {_SPEC_FORMS}.")
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            if path.name == "model.safetensors" and (path.parent / "config.json").is_file():
                return load_model(path.parent, img_size, device, **kwargs)
            loaded = _load_safetensors(path, path.with_suffix(".json"), img_size)
        elif suffix == ".json":
            loaded = _load_safetensors(path.with_suffix(".safetensors"), path, img_size)
        elif suffix in _TORCH_EXTS:
            loaded = _load_torch(path, img_size)
        else:
            raise ValueError(f"Cannot load a model from {str(path)!r} (suffix {suffix!r}); accepted: {_SPEC_FORMS}.")
    else:
        text = os.fspath(spec)
        is_source = text.startswith(("hf-hub:", "local-dir:"))
        if not is_source and ("/" in text or os.sep in text or text.endswith((".safetensors", ".json", *_TORCH_EXTS))):
            raise FileNotFoundError(f"{text!r} does not exist. Accepted: {_SPEC_FORMS}.")
        overlay = {"input_size": (3, img_size, img_size)} if img_size else None
        model = create_model(text, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
        loaded = LoadedModel(model.eval(), text, "pretrained", None)
    loaded.model.to(device)
    return loaded
