"""Pretrained weights through the Hugging Face Hub: resolution, mirrors, cache, verification, loading.

``cervattn.create_model("rcan_densenet121.sipakmed_cells_64", pretrained=True)`` finds the release in
:mod:`cervattn.releases`, resolves its ``model.safetensors`` here, checks its sha256 against the
release table *before* anything is loaded, and hands the file to timm
(``pretrained_cfg_overlay=dict(file=...)``), whose ``load_pretrained`` then applies the model's
filter, adapts the input convolution to ``in_chans`` and drops the classifier when
``num_classes`` differs from the release's.

Where a weight file is looked for, in order:

1. the ``mirror=`` folder(s) passed to :func:`resolve_weights` / ``create_model``;
2. the folder(s) in ``$CERVATTN_MIRROR`` (several separated by ``os.pathsep``);
3. the ``hub/`` release folder of a cervattn source checkout (not shipped in wheels);
4. the Hugging Face cache (``cache_dir=``, else ``$HF_HUB_CACHE``, ``~/.cache/huggingface/hub``);
5. the Hub itself, at the release's pinned revision (skipped when ``HF_HUB_OFFLINE=1``).

A mirror is a folder of Hub-layout repositories, one folder per repository id:
``<mirror>/<org>/<name>/{config.json, model.safetensors, README.md}``, e.g.
``<mirror>/cervattn/rcan_densenet121.sipakmed_cells_64/`` (what ``hf download REPO --local-dir
<mirror>/REPO`` gives). For cervattn's own organisation the org folder may be left out
(``<mirror>/rcan_densenet121.sipakmed_cells_64/``): the repository's ``hub/`` folder uses that form.

cervattn never unpickles: released weights are safetensors, and a user's own ``.pt``/``.pth``
checkpoint is read by :func:`load_checkpoint` with ``torch.load(weights_only=True)``.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg, split_model_name_tag

from .constants import HUB_ORG
from .models import is_cervattn_arch
from .releases import (
    WEIGHTS_FILE,
    Release,
    get_release,
    list_releases,
    release_pretrained_cfg,
    temporary_release,
)

__all__ = [
    "ENV_MIRROR",
    "CHECKOUT_MIRROR",
    "IntegrityError",
    "WeightsNotFoundError",
    "sha256_file",
    "mirror_dirs",
    "find_in_mirrors",
    "find_release",
    "pretrained_cfg",
    "resolve_weights",
    "download",
    "verify_folder",
    "load_checkpoint",
    "torch_load_weights_only",
    "temporary_release",
]

_logger = logging.getLogger(__name__)

#: Environment variable naming mirror folder(s), separated by ``os.pathsep``.
ENV_MIRROR = "CERVATTN_MIRROR"



def _checkout_mirror() -> Path | None:
    """The ``hub/`` folder of a source checkout (beside ``pyproject.toml``), if this is one."""
    root = Path(__file__).resolve().parent.parent
    hub = root / "hub"
    return hub if (root / "pyproject.toml").is_file() and (root / "cervattn").is_dir() and hub.is_dir() else None


#: The release folder of the source checkout this package runs from, consulted as a mirror
#: after ``mirror=`` and ``$CERVATTN_MIRROR``; ``None`` for an installed wheel.
CHECKOUT_MIRROR: Path | None = _checkout_mirror()


class IntegrityError(OSError):
    """A weight file's sha256 differs from the release table's: truncated, corrupted or tampered."""


class WeightsNotFoundError(FileNotFoundError):
    """No mirror, cache or (online) Hub holds the requested weight file."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of the file at ``path`` (symlinks followed), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Mirrors


def _as_paths(value: Any, what: str) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value).expanduser()]
    if isinstance(value, Sequence):
        return [p for v in value for p in _as_paths(v, what)]
    raise TypeError(f"{what} must be a path or a list of paths, got {type(value).__name__}: {value!r}.")


def mirror_dirs(mirror: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """The mirror folders consulted, in order: ``mirror``, ``$CERVATTN_MIRROR``, the checkout's ``hub/``.

    Raises:
        FileNotFoundError: A folder given as ``mirror`` does not exist.
    """
    explicit = _as_paths(mirror, "mirror")
    for path in explicit:
        if not path.is_dir():
            raise FileNotFoundError(
                f"mirror={str(path)!r} is not a folder. A mirror is a folder of Hub-layout repositories "
                f"(<mirror>/<org>/<arch>.<tag>/model.safetensors); create it or fix the path."
            )
    env = [Path(p).expanduser() for p in os.environ.get(ENV_MIRROR, "").split(os.pathsep) if p.strip()]
    for path in env:
        if not path.is_dir():
            warnings.warn(
                f"{ENV_MIRROR} names {str(path)!r}, which is not a folder; it is skipped. Fix or unset "
                f"{ENV_MIRROR}.",
                stacklevel=3,
            )
    checkout = [CHECKOUT_MIRROR] if CHECKOUT_MIRROR is not None else []
    out: list[Path] = []
    for path in explicit + [p for p in env if p.is_dir()] + checkout:
        if path not in out:
            out.append(path)
    return out


def _repo_dirs(repo_id: str, mirrors: Sequence[Path]) -> list[Path]:
    org, _, name = repo_id.partition("/")
    out = []
    for root in mirrors:
        out.append(root.joinpath(*repo_id.split("/")))
        if org == HUB_ORG and name:
            out.append(root / name)
    return out


def find_in_mirrors(
    repo_id: str, filename: str, mirror: str | os.PathLike | Sequence[str | os.PathLike] | None = None
) -> tuple[Path | None, list[Path]]:
    """Look for ``filename`` of Hub repository ``repo_id`` in the mirror folders.

    Returns:
        ``(path or None, repository folders looked in)``.
    """
    looked = _repo_dirs(repo_id, mirror_dirs(mirror))
    for folder in looked:
        if (folder / filename).is_file():
            return folder / filename, looked
    return None, looked


# --------------------------------------------------------------------------------------------------
# Names, tags and cfgs


def _available_tags(arch: str) -> list[str]:
    names = list(get_arch_pretrained_cfgs(arch)) + [r.name for r in list_releases(arch)]
    return list(dict.fromkeys(n for n in names if "." in n))


def find_release(name: str) -> Release | None:
    """The release that ``name`` (``arch`` or ``arch.tag``) refers to, or ``None``.

    An untagged cervattn architecture refers to its first release (its default tag); an untagged
    timm architecture (``"resnet50"``) keeps timm's default tag, so it is never a release.

    Raises:
        ValueError: ``name`` has a tag that neither timm nor the release table knows; the message
            lists the architecture's tags.
    """
    arch, tag = split_model_name_tag(name)
    if not tag:
        releases = list_releases(arch) if is_cervattn_arch(arch) else []
        return releases[0] if releases else None
    release = get_release(f"{arch}.{tag}")
    if release is None and f"{arch}.{tag}" not in get_arch_pretrained_cfgs(arch):
        tags = _available_tags(arch)
        close = difflib.get_close_matches(f"{arch}.{tag}", tags, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown pretrained tag {tag!r} for {arch!r}.{hint} Available: "
            f"{', '.join(tags) if tags else 'none (this architecture has no pretrained weights)'}. "
            "See cervattn.list_pretrained()."
        )
    return release


def _base_cfg(arch: str) -> dict[str, Any]:
    """The architecture's cfg that is not itself a release (the ImageNet start, or timm's default)."""
    cfgs = get_arch_pretrained_cfgs(arch)
    for tagged, cfg in cfgs.items():
        if get_release(tagged) is None:
            return cfg.to_dict()
    cfg = next(iter(cfgs.values()), None) or get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def _release_cfg(release: Release) -> dict[str, Any]:
    registered = get_arch_pretrained_cfgs(release.arch).get(release.name)
    if registered is not None and registered.hf_hub_id == release.repo_id:
        return registered.to_dict()
    return release_pretrained_cfg(release, _base_cfg(release.arch))


def pretrained_cfg(name: str) -> dict[str, Any]:
    """The pretrained cfg of ``name`` as a dict: a release's (table entry applied) or timm's.

    Examples:
        >>> import cervattn
        >>> cervattn.hub.pretrained_cfg("rcan_densenet121.tv_in1k")["hf_hub_id"]
        'timm/densenet121.tv_in1k'
    """
    release = find_release(name)
    if release is not None:
        return _release_cfg(release)
    cfg = get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


# --------------------------------------------------------------------------------------------------
# Resolution and verification


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    from huggingface_hub import constants

    return Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _repo_cache_folder(repo_id: str, cache_dir: Path) -> Path:
    return cache_dir / ("models--" + repo_id.replace("/", "--"))


def _not_found(
    name: str, repo_id: str, filename: str, revision: str | None, looked: Sequence[Path], cache_dir: Path
) -> WeightsNotFoundError:
    where = "offline (HF_HUB_OFFLINE=1), " if _offline() else ""
    lines = [
        f"No {filename} for {name!r} ({repo_id}, revision {revision or 'main'}): {where}no mirror or cache "
        "holds it.",
        "Looked in:",
    ]
    lines += [f"  - mirror {folder}" for folder in looked] or [
        f"  - no mirror folder (mirror=None, ${ENV_MIRROR} unset, no hub/ folder of a source checkout)"
    ]
    lines.append(f"  - Hugging Face cache {_repo_cache_folder(repo_id, cache_dir)}")
    rev = f" --revision {revision}" if revision else ""
    lines += [
        "Fix it in one of three ways:",
        "  1. go online: unset HF_HUB_OFFLINE (before Python starts) so the file is downloaded to the cache;",
        f"  2. set mirror= or ${ENV_MIRROR} to a folder holding {repo_id}/{filename} "
        f"(or {repo_id.split('/')[-1]}/{filename} for {HUB_ORG} repositories);",
        f"  3. pre-download it on a connected machine with `hf download {repo_id}{rev}` "
        f"(`huggingface-cli download` on older huggingface_hub) or cervattn.hub.download({name!r}), and "
        "copy the cache folder (or pass local_dir= to make a mirror).",
    ]
    return WeightsNotFoundError("\n".join(lines))


def _check(path: Path, expected: str, release: Release, filename: str, origin: str, revision: str | None) -> None:
    actual = sha256_file(path)
    if actual == expected:
        return
    real = Path(os.path.realpath(path))
    if origin == "cache":
        fix = (
            f"Nothing was loaded. Delete the cached copy ({real}, or the whole folder "
            f"{real.parent.parent}) and load again, or pass force_download=True to download it afresh."
        )
    else:
        fix = f"Nothing was loaded. Replace {path} with the released file (cervattn.hub.download) or remove it."
    note = ""
    if revision and release.revision and revision != release.revision:
        note = (
            f" You asked for revision {revision!r}, but the release table's hashes belong to revision "
            f"{release.revision!r}; pass verify=False to load another revision unverified."
        )
    raise IntegrityError(
        f"sha256 mismatch for {filename} of {release.name!r} from the {origin} ({path}): got {actual}, the "
        f"release table expects {expected}. The file is truncated, corrupted or not the released one "
        f"({real.stat().st_size} bytes).{note} {fix}"
    )


def _hub_download(release: Release, filename: str, revision: str | None, cache_dir: str | os.PathLike | None,
                  force_download: bool, looked: Sequence[Path], local_dir: Path | None = None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(
            hf_hub_download(
                release.repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_dir=local_dir,
                force_download=force_download,
                library_name="cervattn",
            )
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        raise _not_found(release.name, release.repo_id, filename, revision, looked, _cache_dir(cache_dir)) from e
    except ValueError as e:
        if force_download and _offline():
            raise ValueError(
                f"force_download=True needs the network, but HF_HUB_OFFLINE=1. Go online, or delete the "
                f"cached copy under {_repo_cache_folder(release.repo_id, _cache_dir(cache_dir))} and use a "
                f"mirror (mirror= or ${ENV_MIRROR})."
            ) from e
        raise


def _as_release(name_or_release: str | Release) -> Release:
    if isinstance(name_or_release, Release):
        return name_or_release
    release = find_release(name_or_release)
    if release is None:
        raise ValueError(
            f"{name_or_release!r} is not a cervattn release, so there is no sha256 to check it against. "
            f"Releases: {', '.join(r.name for r in list_releases()) or 'none yet'}. timm's own tags load "
            "with cervattn.create_model(name, pretrained=True)."
        )
    return release


def resolve_weights(
    name: str | Release,
    mirror: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    verify: bool = True,
) -> Path:
    """Local path of a release's ``model.safetensors``, its sha256 checked.

    Looks in the mirrors, then the Hugging Face cache, then downloads (see the module docstring).

    Args:
        name: ``arch.tag`` (or ``arch`` for its default release), or a :class:`~cervattn.releases.Release`.
        mirror: Mirror folder(s) consulted first.
        revision: Hub revision; default the release's pinned commit. Another revision skips the
            mirrors, and its file must still match the table unless ``verify=False``.
        cache_dir: Hugging Face cache folder; default ``$HF_HUB_CACHE``.
        force_download: Skip mirrors and cache, download afresh (needs the network).
        verify: Check the sha256 (default). ``False`` loads unverified, with a warning.

    Returns:
        The path of the verified file (inside a mirror or the cache).

    Raises:
        IntegrityError: The file found has another sha256 than the release table's; nothing is loaded.
        WeightsNotFoundError: Offline and no mirror or cache holds it; the message lists where it
            looked and how to fix it.
    """
    release = _as_release(name)
    expected = release.sha256[WEIGHTS_FILE]
    pinned = release.revision
    explicit_other = revision is not None and revision != pinned
    if not verify:
        warnings.warn(
            f"verify=False: the weights of {release.name!r} are loaded without checking their sha256.",
            stacklevel=2,
        )
    looked: list[Path] = []
    if not force_download and not explicit_other:
        path, looked = find_in_mirrors(release.repo_id, WEIGHTS_FILE, mirror)
        if path is not None:
            if verify:
                _check(path, expected, release, WEIGHTS_FILE, "mirror", revision)
            _logger.info("Loading %s from mirror %s", release.name, path)
            return path
    path = _hub_download(release, WEIGHTS_FILE, revision or pinned, cache_dir, force_download, looked)
    if verify:
        _check(path, expected, release, WEIGHTS_FILE, "cache", revision)
    return path


def download(
    name: str | Release,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
    force_download: bool = False,
) -> Path:
    """Download every file of a release, check each sha256, and return the folder holding them.

    Use it on a connected machine to fill the Hugging Face cache, or with ``local_dir`` to build a
    mirror folder to copy to an offline machine (the files land in ``<local_dir>/<org>/<arch>.<tag>/``).

    Args:
        name: ``arch.tag`` or a :class:`~cervattn.releases.Release`.
        revision: Hub revision; default the release's pinned commit.
        cache_dir: Hugging Face cache folder; default ``$HF_HUB_CACHE``.
        local_dir: Mirror root to download into instead of the cache.
        force_download: Download even if cached.

    Returns:
        The snapshot folder in the cache, or ``<local_dir>/<repo_id>``.

    Raises:
        IntegrityError: A downloaded file has the wrong sha256.
        WeightsNotFoundError: Offline and not cached.
    """
    release = _as_release(name)
    target = Path(local_dir).expanduser().joinpath(*release.repo_id.split("/")) if local_dir else None
    folder = None
    for filename, expected in release.sha256.items():
        path = _hub_download(release, filename, revision or release.revision, cache_dir, force_download, [],
                             local_dir=target)
        _check(path, expected, release, filename, "mirror" if target else "cache", revision)
        folder = path.parent
    return target or folder  # type: ignore[return-value]


def verify_folder(folder: str | os.PathLike, name: str | Release | None = None) -> dict[str, str]:
    """Check the files of a release folder (a mirror entry or export) against the release table.

    Args:
        folder: Folder holding ``model.safetensors`` and the release's other files.
        name: The release; default the folder's name (``arch.tag``).

    Returns:
        ``{filename: sha256}`` of the checked files.

    Raises:
        FileNotFoundError: A file listed by the release is missing.
        IntegrityError: A file has another sha256.
    """
    folder = Path(folder)
    release = _as_release(name if name is not None else folder.name)
    for filename, expected in release.sha256.items():
        if not (folder / filename).is_file():
            raise FileNotFoundError(
                f"{folder} lacks {filename}, listed by release {release.name!r}; copy the whole repository."
            )
        _check(folder / filename, expected, release, filename, "mirror", None)
    return dict(release.sha256)


# --------------------------------------------------------------------------------------------------
# Checkpoints


def torch_load_weights_only(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with an error that says how to re-save the file.

    Raises:
        ValueError: The file needs unpickling of Python objects (classes, functions, Namespaces).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path} needs unpickling of Python objects, which cervattn never does (it can run arbitrary "
            "code). Accepted: a safetensors file, or a torch.save file of tensors, dicts, lists and plain "
            "values (e.g. torch.save({'model': model.state_dict(), 'args': vars(args)}, path)). Re-save it "
            f"that way in a trusted environment. torch said: {str(e).splitlines()[0]}"
        ) from e


def load_checkpoint(
    path: str | os.PathLike, key: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` checkpoint, never unpickling code.

    ``.pt``/``.pth``/``.ckpt`` files are read with ``torch.load(weights_only=True)``, which accepts
    tensors, dicts, lists and plain values only. A checkpoint dict is unwrapped at ``key``, else at
    ``"model"``, ``"state_dict"``; the ``module.`` (DataParallel) and ``_orig_mod.``
    (``torch.compile``) prefixes are removed.

    Args:
        path: The file.
        key: Entry of a checkpoint dict holding the state dict, e.g. ``"model_ema"``.
        map_location: Device the tensors are loaded to.

    Returns:
        ``{parameter name: tensor}``.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The checkpoint needs unpickling of Python objects, or holds no state dict.

    Examples:
        >>> sd = load_checkpoint("runs/rcan/best.pt")  # doctest: +SKIP
        >>> model = cervattn.create_model("rcan_densenet121", checkpoint_path="runs/rcan/best.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {str(path)!r}. Give a .safetensors file or a torch.save checkpoint (.pt/.pth)."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    obj = torch_load_weights_only(path, map_location)
    state = obj
    if isinstance(obj, Mapping):
        for candidate in ([key] if key else ["model", "state_dict"]):
            if candidate in obj and isinstance(obj[candidate], Mapping):
                state = obj[candidate]
                break
        else:
            if key:
                raise ValueError(f"{path} has no state dict at key {key!r}; its keys: {sorted(obj)}.")
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"{path} holds no state dict (got {keys}). Accepted: a state dict, or a dict with the state "
            "dict under 'model' or 'state_dict' (pass key= for another entry)."
        )
    from timm.models import clean_state_dict

    return clean_state_dict(dict(state))


# --------------------------------------------------------------------------------------------------
# Model creation (called by cervattn.create_model)


def _check_keys(model: torch.nn.Module, path: Path, cfg: Mapping[str, Any]) -> None:
    """Strict key check of a release load that timm made non-strict to drop the classifier."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        saved = set(f.keys())
    classifiers = cfg.get("classifier") or ()
    classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
    head = {f"{c}.{p}" for c in classifiers for p in ("weight", "bias")}
    own = set(model.state_dict())
    missing, unexpected = sorted(own - saved - head), sorted(saved - own - head)
    if missing or unexpected:
        raise RuntimeError(
            f"{path} does not fit {cfg.get('architecture')}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}). Only the classifier may differ; check "
            "that the release table names the right architecture."
        )


_SOURCE_OVERRIDES = ("file", "url", "state_dict", "hf_hub_id")


def create_with_weights(
    name: str,
    pretrained: bool,
    mirror: Any,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
    force_download: bool,
    verify: bool,
    kwargs: dict[str, Any],
) -> torch.nn.Module:
    """Route ``name`` to timm with a verified weight file (releases) or a mirror copy (timm's tags)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    if name.startswith(("hf-hub:", "hf_hub:")):
        repo, _, rev = name.split(":", 1)[1].partition("@")
        release = get_release(repo.split("/")[-1]) if repo.startswith(f"{HUB_ORG}/") else None
        if release is None or release.repo_id != repo:
            return timm.create_model(name, pretrained=pretrained, cache_dir=cache_dir, **kwargs)
        name, revision = release.name, rev or revision
    elif ":" in name:
        return timm.create_model(name, pretrained=pretrained, cache_dir=cache_dir, **kwargs)

    overlay = dict(kwargs.pop("pretrained_cfg_overlay", None) or {})
    user_source = any(overlay.get(k) for k in _SOURCE_OVERRIDES)  # the caller's own weights: not checked
    release = None if "pretrained_cfg" in kwargs else find_release(name)
    if release is not None:
        cfg = _release_cfg(release)
        path = None
        if pretrained and not user_source:
            path = resolve_weights(release, mirror, revision, cache_dir, force_download, verify)
            overlay["file"] = str(path)
        model = timm.create_model(
            release.arch, pretrained=pretrained, pretrained_cfg=cfg, pretrained_cfg_overlay=overlay,
            cache_dir=cache_dir, **kwargs,
        )
        if path is not None and not kwargs.get("features_only"):
            _check_keys(model, path, cfg)
        return model

    cfg = get_pretrained_cfg(name) if pretrained and not user_source and "pretrained_cfg" not in kwargs else None
    repo_id = cfg.hf_hub_id if cfg is not None else None
    looked: list[Path] = []
    if repo_id:
        if revision:
            overlay["hf_hub_id"] = f"{repo_id}@{revision}"
        elif not force_download and (cfg.hf_hub_filename or WEIGHTS_FILE).endswith(".safetensors"):
            path, looked = find_in_mirrors(repo_id, cfg.hf_hub_filename or WEIGHTS_FILE, mirror)
            if path is not None:
                _logger.info("Loading %s from mirror %s (timm weights: not in cervattn's table)", name, path)
                overlay["file"] = str(path)
    try:
        return timm.create_model(
            name, pretrained=pretrained, pretrained_cfg_overlay=overlay or None, cache_dir=cache_dir, **kwargs
        )
    except LocalEntryNotFoundError as e:
        if not repo_id:
            raise
        filename = cfg.hf_hub_filename or WEIGHTS_FILE
        raise _not_found(name, repo_id, filename, revision, looked, _cache_dir(cache_dir)) from e
