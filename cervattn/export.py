"""Release folders: training checkpoint -> Hub-layout folder with model card, and publishing it.

:func:`export` turns a training checkpoint into the folder of one Hub repository,
``<arch>.<tag>/``::

    config.json        timm's format (architecture, num_classes, label_names, model_args,
                       pretrained_cfg), written by timm's own ``save_config_for_hf``
    model.safetensors  the weights (fp32, or fp16 storage with ``dtype="fp16"``); never pickle
    README.md          the model card: model, data and split, training recipe and compute,
                       metrics with confidence intervals, intended use, limitations, citations,
                       licence and the research-use-only notice
    evaluation.json    the evaluation the card reports (when given), absolute paths removed

It loads with ``timm.create_model("local-dir:<folder>")`` as it is, and with
``timm.create_model("hf-hub:cervattn/<arch>.<tag>")`` once published. :func:`publish` uploads
such a folder with ``huggingface_hub`` (refusing any pickle file); its ``dry_run`` lists exactly
what would be uploaded without touching the network.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch

from .constants import HUB_ORG, RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from .hub import _base_cfg, sha256_file, torch_load_weights_only
from .models import is_cervattn_arch
from .releases import WEIGHTS_FILE, weights_cfg

__all__ = [
    "TrainingCheckpoint",
    "ExportResult",
    "UploadFile",
    "PublishResult",
    "read_training_checkpoint",
    "export",
    "headline_metrics",
    "model_card",
    "plan_upload",
    "publish",
    "PICKLE_SUFFIXES",
]

#: File endings that may hold pickle; never exported, never uploaded.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".pth.tar", ".joblib", ".npy", ".npz")
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, "README.md")
EVAL_FILE = "evaluation.json"
CURVES_FILE = "training_curves.png"
_MANAGED = (*REQUIRED_FILES, EVAL_FILE, CURVES_FILE)
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
_TRAINING_STATE = ("optimizer", "scheduler", "scaler", "ema", "model_ema", "rng")  # resume state, not weights
_SIPAKMED_ABOUT = (
    "SIPaKMeD (Plissiti et al., ICIP 2018): 4,049 isolated cells cropped from 966 Pap-smear field "
    "images, five classes"
)


# --------------------------------------------------------------------------------------------------
# Reading training checkpoints


@dataclass
class TrainingCheckpoint:
    """What :func:`read_training_checkpoint` found in a training checkpoint.

    Attributes:
        state_dict: The model weights.
        arch: Architecture name (a timm/cervattn model).
        config: Training arguments (``args`` or ``config`` entry), plain values.
        epoch: Epoch the weights come from, if recorded.
        metrics: Metrics the training run recorded (e.g. validation), if any.
        meta: Every other plain entry (``dataset``, ``split``, ``data_config``, ``label_names``,
            ``compute``, ``model_args``...).
    """

    state_dict: dict[str, torch.Tensor]
    arch: str
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _sidecar(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".json"), Path(str(path) + ".json")):
        if candidate.is_file():
            return candidate
    return None


def read_training_checkpoint(path: str | os.PathLike, arch: str | None = None) -> TrainingCheckpoint:
    """Read a training checkpoint without unpickling code.

    Accepted formats:

    * a training run folder (``cervattn train --out``): its ``best.safetensors`` + ``best.json``,
      else its ``last.pt``;
    * a ``torch.save`` dict (``.pt``/``.pth``/``.ckpt``), read with ``torch.load(weights_only=True)``:
      ``model`` (the state dict; ``state_dict`` also accepted), ``arch`` (the model name),
      optional ``args`` or ``config`` (a dict of plain values, e.g. ``vars(args)``; not an
      ``argparse.Namespace``), ``epoch``, ``metrics``, and any of ``dataset``, ``split``,
      ``data_config`` or ``pretrained_cfg`` (``input_size``, ``crop_pct``, ``interpolation``,
      ``mean``, ``std``: how the weights were trained and evaluated),
      ``label_names``, ``compute`` (e.g. ``{"device": "1x A100", "hours": 2.5}``),
      ``model_args`` (extra ``create_model`` arguments of the architecture), ``*_version``.
      Resume state (``optimizer``, ``scheduler``, ``scaler``, ``ema``, ``rng``) is ignored;
    * a ``.safetensors`` file of the model weights plus a JSON sidecar with the same entries
      (``<name>.json`` or ``<name>.safetensors.json``); ``arch`` may instead be in the
      safetensors metadata.

    ``arch`` may also come from ``args["arch"]`` or ``args["model"]``, or the ``arch`` argument.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file holds no state dict or no architecture name, or needs unpickling.
    """
    path = Path(path)
    if path.is_dir():  # a training run folder: its best weights, else its last checkpoint
        path = next((path / f for f in ("best.safetensors", "last.pt") if (path / f).is_file()), path / "best.safetensors")
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {str(path)!r}. Give a training run folder (best.safetensors + best.json, or "
            "last.pt), the .pt/.pth file written by training, or a .safetensors file with a JSON sidecar."
        )
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        sidecar = _sidecar(path)
        meta: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar else {}
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        if "arch" in header:
            meta.setdefault("arch", header["arch"])
        state = load_file(str(path))
    else:
        obj = torch_load_weights_only(path)
        if not isinstance(obj, Mapping):
            raise ValueError(f"{path} holds a {type(obj).__name__}; expected a dict with a 'model' state dict.")
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            state, meta = dict(obj), {}
        else:
            key = next((k for k in ("model", "state_dict") if isinstance(obj.get(k), Mapping)), None)
            if key is None:
                raise ValueError(
                    f"{path} has no state dict under 'model' or 'state_dict' (keys: {sorted(obj)}). Save "
                    "training checkpoints as {'model': model.state_dict(), 'arch': name, 'args': vars(args), "
                    "'epoch': epoch, 'metrics': metrics}."
                )
            state = dict(obj[key])
            meta = {k: v for k, v in obj.items() if k not in (key, *_TRAINING_STATE)}
    config = dict(meta.pop("args", None) or meta.pop("config", None) or {})
    name = arch or meta.pop("arch", None) or config.get("arch")
    if name is None and isinstance(config.get("model"), str):
        name = config["model"]
    if not name:
        raise ValueError(
            f"{path} does not say which architecture it holds (no 'arch' entry, nor args['arch'] / "
            "args['model']). Pass arch= (`--arch` on the command line), e.g. 'rcan_densenet121'."
        )
    name = str(name).split(":")[-1]
    from timm.models import clean_state_dict, split_model_name_tag

    name = split_model_name_tag(name)[0]
    if not timm.is_model(name):
        raise ValueError(f"{path} names the architecture {name!r}, which timm does not know; pass arch=.")
    epoch = meta.pop("epoch", None)
    metrics = meta.pop("metrics", None) or {}
    return TrainingCheckpoint(
        state_dict=clean_state_dict(state),
        arch=name,
        config=config,
        epoch=int(epoch) if epoch is not None else None,
        metrics=dict(metrics) if isinstance(metrics, Mapping) else {"value": metrics},
        meta=meta,
    )


# --------------------------------------------------------------------------------------------------
# Export


@dataclass
class ExportResult:
    """A written release folder.

    Attributes:
        folder: The folder.
        name: ``arch.tag``.
        repo_id: The Hub repository it is meant for.
        sha256: ``{filename: sha256}`` of every file written.
        sizes: ``{filename: bytes}``.
        dtype: ``"fp32"`` or ``"fp16"``: storage of the weights.
        cfg: Pretrained-cfg overrides of the release table entry (input_size, crop_pct, ...).
        dataset, split: What the weights were trained and evaluated on.
        metrics: Headline metrics of the attached evaluation (fractions; empty without one).
        metrics_split: The split of that evaluation.
    """

    folder: Path
    name: str
    repo_id: str
    sha256: dict[str, str]
    sizes: dict[str, int]
    dtype: str
    cfg: dict[str, Any]
    dataset: str
    split: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_split: str = ""

    def sha256_lines(self) -> str:
        """``sha256sum``-style lines, one per file."""
        return "".join(f"{digest}  {name}\n" for name, digest in sorted(self.sha256.items()))

    def release_entry(self) -> str:
        """The entry to paste into ``RELEASES`` in ``cervattn/releases.py``."""
        hashes = "".join(f"            {name!r}: {digest!r},\n" for name, digest in sorted(self.sha256.items()))
        repo = "" if self.repo_id == f"{HUB_ORG}/{self.name}" else f"        repo_id={self.repo_id!r},\n"
        return (
            "    Release(\n"
            f"        name={self.name!r},\n"
            f"        sha256={{\n{hashes}        }},\n"
            "        revision=None,  # the commit printed by `cervattn publish`\n"
            f"        dataset={self.dataset!r},\n"
            f"        split={self.split!r},\n"
            f"        cfg={self.cfg!r},\n"
            + (f"        metrics={self.metrics!r},\n        metrics_split={self.metrics_split!r},\n"
               if self.metrics else "")
            + f"{repo}"
            "    ),\n"
        )


def _data_cfg(ckpt: TrainingCheckpoint, base: Mapping[str, Any], in_chans: int) -> dict[str, Any]:
    """Input expectations of the weights: the checkpoint's ``data_config``, else the ``pretrained_cfg``
    it was trained and evaluated with, else its ``args`` (``img_size``...), else the architecture's."""
    sources = [dict(ckpt.meta.get("data_config") or {}), dict(ckpt.meta.get("pretrained_cfg") or {}), ckpt.config]

    def pick(key: str, default: Any) -> Any:
        return next((src[key] for src in sources if src.get(key) is not None), default)

    out: dict[str, Any] = {}
    size = pick("input_size", None)
    img_size = pick("img_size", None)
    if size is not None:
        out["input_size"] = (in_chans, *tuple(int(s) for s in tuple(size)[-2:]))
    elif img_size is not None:
        hw = (int(img_size), int(img_size)) if isinstance(img_size, (int, float)) else tuple(map(int, img_size))
        out["input_size"] = (in_chans, *hw)
    else:
        out["input_size"] = (in_chans, *tuple(base.get("input_size", (3, 224, 224)))[1:])
    out["crop_pct"] = float(pick("crop_pct", 1.0))
    out["interpolation"] = str(pick("interpolation", base.get("interpolation", "bicubic")))
    for key in ("mean", "std"):
        out[key] = tuple(float(v) for v in pick(key, base.get(key)))
    if in_chans != 3 and len(out["mean"]) != in_chans:
        out["mean"] = tuple([sum(out["mean"]) / len(out["mean"])] * in_chans)
        out["std"] = tuple([sum(out["std"]) / len(out["std"])] * in_chans)
    return out


def _scrub_paths(value: Any) -> Any:
    """``value`` with absolute paths replaced: the trainer's file system is nobody's business."""
    if isinstance(value, Mapping):
        return {k: _scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_paths(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return "(local path)"
    return value


def _shapes(ckpt: TrainingCheckpoint, base: Mapping[str, Any]) -> tuple[int, int]:
    classifier = base.get("classifier") or "fc"
    classifier = classifier if isinstance(classifier, str) else classifier[0]
    first_conv = base.get("first_conv") or "conv1"
    first_conv = first_conv if isinstance(first_conv, str) else first_conv[0]
    sd = ckpt.state_dict
    if f"{classifier}.weight" not in sd or f"{first_conv}.weight" not in sd:
        raise ValueError(
            f"The checkpoint's weights do not look like {ckpt.arch}: no {classifier}.weight or "
            f"{first_conv}.weight among {len(sd)} keys (e.g. {sorted(sd)[:3]}). Pass the right arch."
        )
    return int(sd[f"{classifier}.weight"].shape[0]), int(sd[f"{first_conv}.weight"].shape[1])


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _weights_bytes(model: torch.nn.Module, dtype: str) -> bytes:
    from safetensors.torch import save

    target = _DTYPES[dtype]
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype != target:
            cast = value.to(target)
            if not torch.isfinite(cast).all() and torch.isfinite(value).all():
                raise ValueError(
                    f"{key} has values beyond the {dtype} range (max |x| = {value.abs().max().item():.3g}); "
                    "export with dtype='fp32' (`--fp32`)."
                )
            value = cast
        tensors[key] = value.contiguous()
    return save(tensors, metadata={"format": "pt"})


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    eval_json: str | os.PathLike | None = None,
    tag: str = "sipakmed_cells",
    dtype: str = "fp32",
    arch: str | None = None,
    dataset: str | None = None,
    split: str | None = None,
    repo_id: str | None = None,
    notes: str | None = None,
) -> ExportResult:
    """Write the Hub-layout release folder of a training checkpoint.

    The checkpoint (formats: :func:`read_training_checkpoint`) is loaded strictly into a freshly
    created ``arch`` (so a checkpoint that does not fit its architecture fails here, not on a
    user's machine), then ``config.json`` is written by timm's ``save_config_for_hf``, the weights
    as safetensors, the model card from ``eval_json`` and the checkpoint's recipe, and
    ``evaluation.json`` as a copy of ``eval_json`` with absolute paths removed. Each file is written to ``<name>.partial`` and
    renamed, so an interrupted export leaves no half file under a final name.

    Args:
        checkpoint: Training checkpoint.
        out: Release folder, normally ``hub/<arch>.<tag>`` (created; files of an earlier export
            are replaced).
        eval_json: Evaluation of the weights (``cervattn.metrics.classification_report`` with
            ``add_bootstrap_ci``, plus field-level accuracy), shown in the card.
        tag: Pretrained tag; it says what the weights were trained on.
        dtype: ``"fp32"`` (bit-exact) or ``"fp16"`` (half the size; loads into the model's dtype).
        arch: Architecture, when the checkpoint does not record it.
        dataset: Training data (default: the checkpoint's ``dataset``, else ``"SIPaKMeD"``).
        split: Split in words (default: the checkpoint's ``split`` / ``args["split"]``).
        repo_id: Hub repository; default ``"cervattn/<arch>.<tag>"``.
        notes: Markdown for a "Notes" section of the card (e.g. the gap to a target and what was tried).

    When the checkpoint lies in a training run folder with a ``log.jsonl``, the card also reports
    the compute it logged (epochs, wall time, images/s) and the folder gets ``training_curves.png``.

    Returns:
        :class:`ExportResult`, with ``sha256_lines()`` and ``release_entry()`` for the release table.

    Raises:
        ValueError: Unknown ``dtype``, bad ``tag``, a checkpoint that does not fit ``arch``, a
            pickle file in ``out``, or an ``eval_json`` that is not JSON.

    Examples:
        >>> r = export("runs/rcan/best.pt", "hub/rcan_densenet121.sipakmed_cells",  # doctest: +SKIP
        ...            eval_json="runs/rcan/test_eval.json")
        >>> print(r.release_entry())  # doctest: +SKIP
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not accepted: give 'fp32' (exact) or 'fp16' (half size).")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_]*", tag):
        raise ValueError(
            f"tag={tag!r} is not accepted: lower-case letters, digits and '_', saying what the weights were "
            "trained on, e.g. 'sipakmed_cells'."
        )
    ckpt = read_training_checkpoint(checkpoint, arch)
    name = f"{ckpt.arch}.{tag}"
    repo_id = repo_id or f"{HUB_ORG}/{name}"
    evaluation: dict[str, Any] | None = None
    eval_bytes = None
    if eval_json is not None:
        try:
            evaluation = json.loads(Path(eval_json).read_bytes())
        except json.JSONDecodeError as e:
            raise ValueError(f"eval_json {str(eval_json)!r} is not JSON ({e}); give the evaluation's JSON report.") from e
        evaluation = _scrub_paths(evaluation)
        eval_bytes = (json.dumps(evaluation, indent=2) + "\n").encode("utf-8")

    base = _base_cfg(ckpt.arch)
    num_classes, in_chans = _shapes(ckpt, base)
    label_names = ckpt.meta.get("label_names") or (SIPAKMED_CLASSES if num_classes == len(SIPAKMED_CLASSES) else None)
    if label_names is None or len(label_names) != num_classes:
        raise ValueError(
            f"The checkpoint has {num_classes} classes but records no label_names for them; save "
            "'label_names' (one per class) in the checkpoint."
        )
    dataset = dataset or str(ckpt.meta.get("dataset") or ckpt.config.get("dataset") or "SIPaKMeD")
    split = split or _split_text(ckpt.meta.get("split", ckpt.config.get("split")))
    overrides = _data_cfg(ckpt, base, in_chans)
    if tuple(label_names) != SIPAKMED_CLASSES:
        overrides["label_names"] = tuple(label_names)
        overrides["num_classes"] = num_classes
    description = f"Trained on {dataset}" + (f" ({split})." if split else ".")
    license = str(ckpt.meta.get("license") or "apache-2.0")
    cfg = weights_cfg(base, name, repo_id, license, description, overrides)

    model_args = dict(ckpt.meta.get("model_args") or {})
    model = timm.create_model(
        ckpt.arch, pretrained_cfg=cfg, num_classes=num_classes, in_chans=in_chans, **model_args
    )
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"The checkpoint's weights do not fit {ckpt.arch} (num_classes={num_classes}, in_chans={in_chans}, "
            f"model_args={model_args}): {str(e).splitlines()[0]} Pass the architecture it was trained as."
        ) from e
    model.eval()

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    pickles = [p.name for p in folder.iterdir() if p.name.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(
            f"{folder} holds pickle files {pickles}; a release folder holds safetensors only. Remove them or "
            "export to an empty folder."
        )
    weights = _weights_bytes(model, dtype)
    _write(folder / WEIGHTS_FILE, weights)
    from timm.models._hub import save_config_for_hf

    partial = folder / "config.json.partial"
    save_config_for_hf(model, str(partial), model_config={"label_names": list(label_names)})
    os.replace(partial, folder / "config.json")
    if eval_bytes is not None:
        _write(folder / EVAL_FILE, eval_bytes)
    elif (folder / EVAL_FILE).exists():
        (folder / EVAL_FILE).unlink()  # stale: the card must not point at another evaluation
    log = _run_log(checkpoint)
    if log:
        from .viz_metrics import training_curves_figure

        training_curves_figure(log, folder / (CURVES_FILE + ".partial.png"))
        os.replace(folder / (CURVES_FILE + ".partial.png"), folder / CURVES_FILE)
    elif (folder / CURVES_FILE).exists():
        (folder / CURVES_FILE).unlink()  # stale: from another run
    params = sum(p.numel() for p in model.parameters())
    card = model_card(
        name=name, repo_id=repo_id, cfg=cfg, checkpoint=ckpt, evaluation=evaluation, params=params,
        dtype=dtype, weights_sha256=sha256_file(folder / WEIGHTS_FILE), dataset=dataset, split=split,
        log=log, notes=notes,
    )
    _write(folder / "README.md", card.encode("utf-8"))
    files = [f for f in _MANAGED if (folder / f).is_file()]
    return ExportResult(
        folder=folder,
        name=name,
        repo_id=repo_id,
        sha256={f: sha256_file(folder / f) for f in files},
        sizes={f: (folder / f).stat().st_size for f in files},
        dtype=dtype,
        cfg={k: v for k, v in overrides.items()},
        dataset=dataset,
        split=split,
        metrics=headline_metrics(evaluation) if evaluation else {},
        metrics_split=str(evaluation.get("split") or _report(evaluation).get("split") or "") if evaluation else "",
    )


def headline_metrics(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """``accuracy``, ``weighted_f1``, ``macro_f1`` and ``field_accuracy`` of an evaluation JSON, as
    fractions rounded to 6 digits (what a :class:`~cervattn.releases.Release` records)."""
    report = _report(evaluation)
    values = {key: _metric(report, key)[0] for key in ("accuracy", "weighted_f1", "macro_f1")}
    entry = _field_entry(evaluation, report)
    values["field_accuracy"] = entry[0] if entry else None
    return {k: round(v / 100 if v > 1 else v, 6) for k, v in values.items() if v is not None}


def _run_log(checkpoint: str | os.PathLike) -> list[dict[str, Any]]:
    """The ``log.jsonl`` records of the training run that holds ``checkpoint`` (empty if none)."""
    path = Path(checkpoint)
    log = (path if path.is_dir() else path.parent) / "log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _split_text(split: Any) -> str:
    if split is None:
        return ""
    if isinstance(split, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in split.items())
    return str(split)


# --------------------------------------------------------------------------------------------------
# Model card


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, Mapping):
        for key in ("value", "mean", "estimate", "point"):
            if key in value:
                return _num(value[key])
    return None


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, Mapping):
        for key in ("ci", "ci95", "interval"):
            if key in value:
                return _interval(value[key])
        if "low" in value and "high" in value:
            return _interval([value["low"], value["high"]])
        return None
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _num(value[0]), _num(value[1])
        return (low, high) if low is not None and high is not None else None
    return None


def _report(evaluation: Mapping[str, Any]) -> Mapping[str, Any]:
    if "accuracy" in evaluation or "per_class" in evaluation:
        return evaluation
    for key in ("test", "report", "metrics", "evaluation"):
        if isinstance(evaluation.get(key), Mapping):
            return evaluation[key]
    return evaluation


def _fmt(value: float | None, interval: tuple[float, float] | None, scale: float) -> str:
    if value is None:
        return "-"
    text = f"{value * scale:.1f}"
    if interval is not None:
        text += f" [{interval[0] * scale:.1f}, {interval[1] * scale:.1f}]"
    return text


def _metric(report: Mapping[str, Any], key: str) -> tuple[float | None, tuple[float, float] | None]:
    raw = report.get(key)
    ci = report.get("ci") if isinstance(report.get("ci"), Mapping) else {}
    return _num(raw), _interval(raw) or _interval(ci.get(key)) or _interval(report.get(f"{key}_ci"))


def _field_entry(evaluation: Mapping[str, Any], report: Mapping[str, Any]) -> tuple[float, Any, Mapping] | None:
    """``(value, raw, source)`` of the field-level accuracy of an evaluation, wherever it is kept."""
    for source in (report, evaluation):
        for key in ("field_level_accuracy", "field_accuracy", "field_level"):
            if key in source:
                raw = source[key]
                value = _num(raw if not isinstance(raw, Mapping) or "accuracy" not in raw else raw["accuracy"])
                if value is not None:
                    return value, (key, raw), source
    return None


def _field_level(evaluation: Mapping[str, Any], report: Mapping[str, Any]) -> str | None:
    entry = _field_entry(evaluation, report)
    if entry is None:
        return None
    value, (key, raw), source = entry
    interval = _interval(raw) if isinstance(raw, Mapping) else _interval(source.get(f"{key}_ci"))
    scale = 100.0 if value <= 1 else 1.0
    text = _fmt(value, interval, scale)
    if isinstance(raw, Mapping) and "n_fields" in raw:
        text += f" ({raw.get('n_correct', '?')} of {raw['n_fields']} field images)"
    return text


def _metrics_section(evaluation: Mapping[str, Any] | None, ckpt: TrainingCheckpoint, labels: Sequence[str]) -> str:
    if not evaluation:
        lines = ["No evaluation was attached to this export (`cervattn export --eval-json`)."]
        if ckpt.metrics:
            lines += ["", "Metrics recorded by the training run (not an independent test):", ""]
            lines += ["| Metric | Value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in sorted(ckpt.metrics.items()) if not isinstance(v, (Mapping, list))]
        return "\n".join(lines) + "\n"
    report = _report(evaluation)
    values = [_metric(report, k)[0] for k in ("accuracy", "weighted_f1", "macro_f1")]
    scale = 100.0 if all(v is None or v <= 1 for v in values) else 1.0
    ci = report.get("ci") if isinstance(report.get("ci"), Mapping) else {}
    level = ci.get("alpha")
    ci_text = f"{100 * (1 - float(level)):.0f} % " if isinstance(level, (int, float)) else ""
    boot = f", {ci['n_boot']} bootstrap resamples" if "n_boot" in ci else ""
    n = report.get("n", evaluation.get("n"))
    split = evaluation.get("split") or report.get("split")
    lines = [
        f"On {('the ' + str(split) + ' split') if split else 'the evaluation split'}"
        + (f", {n} cells" if n is not None else "")
        + f". Values in %; brackets: {ci_text}percentile-bootstrap confidence intervals{boot} "
        "(cells resampled independently, so intervals are somewhat narrow: cells of one field image are "
        "correlated).",
        "",
        "| Metric | Value |",
        "|---|---|",
    ]
    for key, label in (("accuracy", "Accuracy"), ("weighted_f1", "Weighted F1 (seed paper, Eq. 1)"),
                       ("macro_f1", "Macro F1"), ("weighted_precision", "Weighted precision"),
                       ("weighted_recall", "Weighted recall")):  # fmt: skip
        value, interval = _metric(report, key)
        if value is not None:
            lines.append(f"| {label} | {_fmt(value, interval, scale)} |")
    field_level = _field_level(evaluation, report)
    if field_level:
        lines.append(f"| Field-level accuracy (predictions pooled over each field image's cells) | {field_level} |")
    per_class = report.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        lines += ["", "Per class:", "", "| Class | Precision | Recall | F1 | Support |", "|---|---|---|---|---|"]
        for cls, scores in per_class.items():
            if not isinstance(scores, Mapping):
                continue
            cells = []
            for key in ("precision", "recall", "f1"):
                interval = (
                    _interval(scores.get(key))
                    or _interval(scores.get(f"{key}_ci"))
                    or _interval((ci.get(f"per_class_{key}") or {}).get(cls))
                )
                cells.append(_fmt(_num(scores.get(key)), interval, scale))
            support = scores.get("support", "-")
            lines.append(f"| {cls} | {' | '.join(cells)} | {support} |")
    matrix = report.get("confusion_matrix")
    if isinstance(matrix, Sequence) and matrix and all(isinstance(r, Sequence) for r in matrix):
        names = list(report.get("class_names") or labels)
        if len(names) == len(matrix):
            lines += ["", "Confusion matrix (rows: true class, columns: predicted):", ""]
            lines.append("| true \\ predicted | " + " | ".join(names) + " |")
            lines.append("|---|" + "---|" * len(names))
            lines += [f"| {names[i]} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(matrix)]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return "(local path)"  # the trainer's file system is nobody's business
    return text.replace("|", "\\|")


def _training_section(ckpt: TrainingCheckpoint, log: Sequence[Mapping[str, Any]] = ()) -> str:
    lines = []
    start = ckpt.config.get("initial_checkpoint") or (ckpt.config.get("model") if ckpt.config.get("pretrained") else None)
    if ckpt.config:
        lines.append(f"Initialisation: {'from ' + _plain(start) if start else 'from scratch (random init, no ImageNet weights)'}.")
    if ckpt.epoch is not None:
        lines.append(f"Weights from epoch {ckpt.epoch}" + (f" of {len(log)} (best validation score)." if log else "."))
    if ckpt.config:
        lines += ["", "Training arguments, as recorded in the checkpoint:", "", "| Argument | Value |", "|---|---|"]
        lines += [f"| {k} | {_plain(v)} |" for k, v in sorted(ckpt.config.items())]
    else:
        lines.append("The checkpoint records no training arguments.")
    versions = [f"{k.removesuffix('_version')} {ckpt.meta[k]}" for k in ("cervattn_version", "torch_version",
                                                                        "timm_version") if ckpt.meta.get(k)]
    if versions:
        lines += ["", "Software: " + ", ".join(versions) + "."]
    compute = ckpt.meta.get("compute") or _logged_compute(log)
    lines += ["", "Compute: " + (", ".join(f"{k}: {_plain(v)}" for k, v in compute.items())
                                 if isinstance(compute, Mapping) else _plain(compute) if compute else "not recorded.")]
    return "\n".join(lines).strip() + "\n"


def _logged_compute(log: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Compute summary from a run's log: epochs, total wall time, mean training images/s."""
    times = [r["epoch_time"] for r in log if r.get("epoch_time")]
    speeds = [r["images_per_s"] for r in log if r.get("images_per_s")]
    if not times:
        return None
    out = {"epochs": str(len(log)), "wall time": f"{sum(times) / 60:.1f} min"}
    if speeds:
        out["training images/s"] = f"{sum(speeds) / len(speeds):.1f} (mean over epochs)"
    return out


_CITATIONS = """```bibtex
@inproceedings{wang2021interpretable,
  title     = {Towards Interpretable Attention Networks for Cervical Cancer Analysis},
  author    = {Wang, Ruiqi and Armin, Mohammad Ali and Denman, Simon and Petersson, Lars and Ahmedt-Aristizabal, David},
  booktitle = {43rd Annual International Conference of the IEEE Engineering in Medicine and Biology Society (EMBC)},
  year      = {2021},
  note      = {arXiv:2106.00557}
}
@inproceedings{plissiti2018sipakmed,
  title     = {SIPaKMeD: A New Dataset for Feature and Image Based Classification of Normal and Pathological Cervical Cells in Pap Smear Images},
  author    = {Plissiti, Marina E. and Dimitrakopoulos, P. and Sfikas, G. and Nikou, Christophoros and Krikoni, O. and Charchanti, A.},
  booktitle = {IEEE International Conference on Image Processing (ICIP)},
  pages     = {3144--3148},
  year      = {2018}
}
```
"""


def model_card(
    name: str,
    repo_id: str,
    cfg: Mapping[str, Any],
    checkpoint: TrainingCheckpoint,
    evaluation: Mapping[str, Any] | None,
    params: int,
    dtype: str,
    weights_sha256: str,
    dataset: str,
    split: str,
    log: Sequence[Mapping[str, Any]] = (),
    notes: str | None = None,
) -> str:
    """The README.md model card of a release (Hugging Face metadata header + markdown)."""
    arch = name.split(".", 1)[0]
    doc = (timm.models.model_entrypoint(arch).__doc__ or "").strip().splitlines()
    summary = doc[0].strip() if doc else arch
    labels = list(cfg.get("label_names") or [])
    license = cfg.get("license", "apache-2.0")
    c, h, w = cfg["input_size"]
    about = _SIPAKMED_ABOUT if dataset.lower() == "sipakmed" else dataset
    timm_note = " (after `import cervattn`, which registers the architecture)" if is_cervattn_arch(arch) else ""
    curves = f"\n![Training curves]({CURVES_FILE})\n" if log else ""
    notes_section = f"## Notes\n\n{notes.strip()}\n\n" if notes else ""
    return f"""---
license: {license}
library_name: timm
pipeline_tag: image-classification
tags:
- image-classification
- timm
- cervattn
- cytology
- pap-smear
- cervical-cancer
- safetensors
---

# {name}

> **{RESEARCH_USE_NOTICE}** These weights have not been validated for any clinical use and must not
> be used to diagnose, screen or treat anyone.

{cfg.get("description", "")}

## Model

- Architecture: `{arch}`: {summary}
- Parameters: {params / 1e6:.2f} M
- Input: {c} x {h} x {w}, `crop_pct` {cfg.get("crop_pct")}, {cfg.get("interpolation")} interpolation,
  mean {tuple(round(float(v), 4) for v in cfg.get("mean", ()))}, std {tuple(round(float(v), 4) for v in cfg.get("std", ()))}
- Output: logits over {len(labels)} classes, in this order: {", ".join(f"{i} {n}" for i, n in enumerate(labels))}
- Weights: `{WEIGHTS_FILE}` ({dtype} storage, loaded into the model's dtype), sha256 `{weights_sha256}`

```python
import cervattn

model = cervattn.create_model("{name}", pretrained=True).eval()  # sha256-checked
# or with timm{timm_note}:
# model = timm.create_model("hf-hub:{repo_id}", pretrained=True)
# Fine-tuning: num_classes=N drops the classifier, everything else loads strictly.
```

## Data

{about}. Split: {split or "not recorded"}.

## Training

{_training_section(checkpoint, log)}{curves}
## Evaluation

{_metrics_section(evaluation, checkpoint, labels)}
{notes_section}## Intended use

Research on cervical-cell classification and on the interpretability of attention networks
(attention maps, Integrated Gradients), and a starting point for fine-tuning on other cytology data.
{RESEARCH_USE_NOTICE}

## Limitations

- Trained and evaluated on one public dataset of cropped, single cells from one source; accuracy on
  other staining protocols, scanners, laboratories, whole slides or unsegmented fields is unknown and
  likely lower.
- Cells cut from the same field image are correlated; cervattn's splits keep each field image in one
  subset, but the confidence intervals above treat cells as independent, so they are optimistic.
- Five morphological classes only; no adequacy assessment, no Bethesda grading, no rare categories.
- Attention maps and attributions explain the model, not the disease; they are not localisations a
  clinician can rely on.

## Citation

If you use these weights, cite the seed paper and the dataset:

{_CITATIONS}
## Licence

Weights: {license}. Code: cervattn (Apache-2.0), built on timm. SIPaKMeD is distributed by its
authors under their own terms.
"""


# --------------------------------------------------------------------------------------------------
# Publish


@dataclass(frozen=True)
class UploadFile:
    """One file of a release folder to upload: path in the repository, bytes, sha256."""

    path: str
    size: int
    sha256: str


@dataclass
class PublishResult:
    """What :func:`publish` uploaded (or, with ``dry_run``, would upload).

    Attributes:
        repo_id: The Hub repository.
        revision: Branch uploaded to (``None``: the default branch).
        files: The files.
        commit: Hash of the commit created (``None`` for a dry run): the release's ``revision``.
        url: The commit's URL (``None`` for a dry run).
        dry_run: Whether nothing was uploaded.
    """

    repo_id: str
    revision: str | None
    files: list[UploadFile]
    commit: str | None = None
    url: str | None = None
    dry_run: bool = False


def plan_upload(folder: str | os.PathLike) -> list[UploadFile]:
    """The files :func:`publish` would upload from ``folder``: every non-hidden file, checked.

    Raises:
        FileNotFoundError: ``folder`` is missing or lacks config.json, model.safetensors or README.md.
        ValueError: A pickle file (``.pt``, ``.pth``, ``.bin``, ``.pkl``, ``.ckpt``...) is present, or
            ``model.safetensors`` is not a safetensors file, or ``config.json`` is not timm's format.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{str(folder)!r} is not a folder; give a release folder written by `cervattn export`.")
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip
    rel = [p.relative_to(folder).as_posix() for p in files]
    pickles = [r for r in rel if r.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(
            f"Refusing to upload pickle files {pickles} from {folder}: they can run code when loaded. cervattn "
            "releases hold safetensors only; remove them (re-export with `cervattn export` if needed)."
        )
    missing = [f for f in REQUIRED_FILES if f not in rel]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}; write the folder with `cervattn export`.")
    partial = [r for r in rel if r.endswith(".partial")]
    if partial:
        raise ValueError(f"{folder} holds unfinished files {partial} from an interrupted export; export again.")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{folder / WEIGHTS_FILE} is not a valid safetensors file ({e}); export again.") from e
    try:
        config = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{folder / 'config.json'} is not JSON ({e}); export again.") from e
    if not isinstance(config, Mapping) or "architecture" not in config or "pretrained_cfg" not in config:
        raise ValueError(
            f"{folder / 'config.json'} is not timm's format (needs 'architecture' and 'pretrained_cfg'); export again."
        )
    return [UploadFile(r, p.stat().st_size, sha256_file(p)) for r, p in zip(rel, files)]


def _check_repo_id(repo_id: str, folder: Path) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id or ""):
        raise ValueError(f"repo_id={repo_id!r} is not accepted: give '<org>/<arch>.<tag>', e.g. '{HUB_ORG}/{folder.name}'.")
    arch = json.loads((folder / "config.json").read_text())["architecture"]
    repo_arch, dot, tag = repo_id.split("/", 1)[1].partition(".")
    if not dot or not tag or repo_arch != arch:
        raise ValueError(
            f"repo_id={repo_id!r} does not follow '<org>/<arch>.<tag>' for the folder's architecture {arch!r}; "
            f"use e.g. '{HUB_ORG}/{arch}.sipakmed_cells'."
        )


def publish(
    folder: str | os.PathLike,
    repo_id: str,
    revision: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> PublishResult:
    """Upload a release folder to the Hugging Face Hub (``create_repo`` + ``upload_folder``).

    The token comes from ``token``, else the usual Hugging Face sources (``$HF_TOKEN``, the token
    saved by ``hf auth login``). Only the files listed by :func:`plan_upload` are uploaded.

    Args:
        folder: Release folder written by :func:`export`.
        repo_id: ``"<org>/<arch>.<tag>"``; its architecture must be the folder's.
        revision: Branch to upload to (created when missing); default the main branch.
        private: Create the repository private.
        dry_run: Only list what would be uploaded; no network, no token needed.
        commit_message: Default ``"Upload <arch>.<tag> (cervattn export)"``.
        token: Hugging Face token; default from the environment.

    Returns:
        :class:`PublishResult`; ``commit`` is the revision to pin in the release table.

    Raises:
        ValueError: Pickle files, a malformed folder or ``repo_id``.
        RuntimeError: Offline mode is on, or no token is available.
    """
    folder = Path(folder)
    files = plan_upload(folder)
    _check_repo_id(repo_id, folder)
    if dry_run:
        return PublishResult(repo_id, revision, files, dry_run=True)
    from huggingface_hub import HfApi, constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise RuntimeError(
            "Publishing needs the network but HF_HUB_OFFLINE=1 is set. Unset it (before Python starts), or "
            "use dry_run=True (`--dry-run`) to list what would be uploaded."
        )
    token = token or get_token()
    if not token:
        raise RuntimeError(
            "No Hugging Face token: set HF_TOKEN (a token with write access to the organisation) or run "
            "`hf auth login`, then publish again."
        )
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        revision=revision,
        allow_patterns=[f.path for f in files],
        commit_message=commit_message or f"Upload {repo_id.split('/', 1)[1]} (cervattn export)",
    )
    return PublishResult(repo_id, revision, files, commit=getattr(info, "oid", None),
                         url=getattr(info, "commit_url", None))
