"""Pretrained weights through the Hub: release table, resolution (mirror, cache), sha256 checks,
loading through timm, fine-tuning and offline errors.

Nothing touches the network: HF_HUB_OFFLINE=1 (conftest) and every test builds the real
huggingface_hub cache layout (``models--org--name/{blobs,snapshots,refs}``) or a mirror folder in
tmp_path from a tiny model exported with ``cervattn.export``.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import huggingface_hub.constants
import pytest
import timm
import torch
from conftest import REPO, perturbed_model
from safetensors.torch import load_file, save_file

import cervattn
from cervattn import hub
from cervattn.constants import HUB_ORG, SIPAKMED_CLASSES
from cervattn.export import export
from cervattn.releases import Release, get_release, list_releases, temporary_release

ARCH = "test_rcan_densenet"
NAME = f"{ARCH}.sipakmed_cells"
REPO_ID = f"{HUB_ORG}/{NAME}"
COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
X = torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------------------------------
# Helpers: a trained-looking tiny model, its export, the HF cache layout, a mirror


def trained_model(arch: str = ARCH, seed: int = 0) -> torch.nn.Module:
    return perturbed_model(arch, seed)


def export_model(model, folder, arch=ARCH, dtype="fp32", tag="sipakmed_cells"):
    ckpt = folder.parent / f"{folder.name}-train.pt"
    torch.save({"model": model.state_dict(), "arch": arch, "args": {"lr": 0.01}, "epoch": 1}, ckpt)
    return export(ckpt, folder, tag=tag, dtype=dtype, split="test split of the fake data")


def release_of(result, revision=COMMIT, **kwargs) -> Release:
    return Release(result.name, result.sha256, revision=revision, split=result.split, cfg=result.cfg, **kwargs)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_to_hf_cache(cache, repo_id, folder, commit=COMMIT, ref="main"):
    """Lay ``folder``'s files out as huggingface_hub does: blobs named by sha256 (LFS files) or git
    sha1 (others), snapshot symlinks, refs/<branch>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        blob = hashlib.sha256(data).hexdigest() if path.suffix == ".safetensors" else git_blob_sha1(data)
        (repo / "blobs" / blob).write_bytes(data)
        link = snapshot / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.join("..", "..", "blobs", blob))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo


def blob_of(repo, commit=COMMIT, filename="model.safetensors"):
    return (repo / "snapshots" / commit / filename).resolve()


def outputs(model):
    with torch.no_grad():
        return model.eval()(X)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No user cache, no $CERVATTN_MIRROR, no checkout hub/ folder: only what a test builds."""
    monkeypatch.delenv(hub.ENV_MIRROR, raising=False)
    monkeypatch.setattr(hub, "CHECKOUT_MIRROR", None)
    empty = tmp_path / "default-hf-cache"
    empty.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = trained_model()
    folder = tmp_path_factory.mktemp("export") / NAME
    return model, export_model(model, folder)


@pytest.fixture
def release(exported):
    with temporary_release(release_of(exported[1])) as rel:
        yield rel


@pytest.fixture
def cache(tmp_path, exported):
    root = tmp_path / "hf-cache"
    add_to_hf_cache(root, REPO_ID, exported[1].folder)
    return root


@pytest.fixture
def mirror(tmp_path, exported):
    root = tmp_path / "mirror"
    shutil.copytree(exported[1].folder, root / HUB_ORG / NAME)
    return root


@pytest.fixture
def no_load(monkeypatch):
    """Fails the test if timm reads any weight file."""
    calls = []
    import timm.models._builder as builder

    monkeypatch.setattr(builder, "load_state_dict", lambda *a, **k: calls.append(a) or pytest.fail("loaded"))
    return calls


# --------------------------------------------------------------------------------------------------
# The release table


def test_release_validates_its_fields():
    good = {"model.safetensors": "0" * 64}
    rel = Release("rcan_densenet121.sipakmed_cells", good)
    assert rel.repo_id == "cervattn/rcan_densenet121.sipakmed_cells" and rel.arch == "rcan_densenet121"
    assert rel.tag == "sipakmed_cells" and "SIPaKMeD" in rel.description
    with pytest.raises(ValueError, match="64 hex"):
        Release(NAME, {"model.safetensors": "abc"})
    with pytest.raises(ValueError, match="model.safetensors"):
        Release(NAME, {"config.json": "0" * 64})
    with pytest.raises(ValueError, match="pickle"):
        Release(NAME, {**good, "pytorch_model.bin": "1" * 64})
    with pytest.raises(ValueError, match="40-hex commit"):
        Release(NAME, good, revision="main")
    with pytest.raises(ValueError, match="<arch>.<tag>"):
        Release("rcan_densenet121", good)
    with pytest.raises(ValueError, match=r"\['img_size'\] are not timm PretrainedCfg fields"):
        Release(NAME, good, cfg={"img_size": 256})
    with pytest.raises(ValueError, match="not fractions"):
        Release(NAME, good, metrics={"accuracy": 93.7}, metrics_split="val")
    with pytest.raises(ValueError, match="metrics_split"):
        Release(NAME, good, metrics={"accuracy": 0.937})


def test_every_real_release_is_well_formed_and_registered():
    """Checks each entry of the shipped table."""
    from cervattn.releases import RELEASES

    assert isinstance(RELEASES, tuple) and all(isinstance(r, Release) for r in RELEASES)
    assert len({r.name for r in RELEASES}) == len(RELEASES), "duplicate release names"
    for rel in RELEASES:
        assert timm.is_model(rel.arch), f"{rel.name}: unknown architecture"
        assert rel.repo_id == f"{HUB_ORG}/{rel.name}"
        # revision stays None until the weights are on the Hub (the checkout's hub/ folder serves
        # them meanwhile, sha256-checked); Release() itself rejects anything but a 40-hex commit.
        assert rel.revision is None or len(rel.revision) == 40
        if rel.revision is None:
            assert (REPO / "hub" / rel.name / "model.safetensors").is_file(), f"{rel.name}: unpublished, not in hub/"
        assert rel.split, f"{rel.name}: say which split trained and evaluated it"
        cfg = hub.pretrained_cfg(rel.name)
        assert cfg["hf_hub_id"] == rel.repo_id and tuple(cfg["label_names"]) == SIPAKMED_CLASSES
        if cervattn.is_cervattn_model(rel.arch):  # spliced into the model file's default_cfgs, best first
            assert timm.models.get_pretrained_cfg(rel.name).hf_hub_id == rel.repo_id
            assert timm.models.get_pretrained_cfg(rel.arch).tag == list_releases(rel.arch)[0].tag


def test_release_tags_come_first_in_default_cfgs():
    """A release of a cervattn architecture becomes its default tag, ahead of the ImageNet start,
    through the model file's own default_cfgs (checked in a fresh interpreter: the table is read
    when the model module runs)."""
    code = textwrap.dedent("""
        import importlib, timm
        import cervattn.releases as r
        r.RELEASES = (r.Release("rcan_densenet121.sipakmed_cells", {"model.safetensors": "0" * 64},
                                cfg={"input_size": (3, 256, 256)}),)
        import cervattn.models.attention_densenets as m
        before = timm.models.get_pretrained_cfg("densenet121").to_dict()
        importlib.reload(m)
        cfg = timm.models.get_pretrained_cfg("rcan_densenet121")
        tags = list(timm.models.get_arch_pretrained_cfgs("rcan_densenet121"))
        print(cfg.tag, cfg.hf_hub_id, cfg.input_size, cfg.crop_pct, cfg.first_conv, tags)
        print(timm.models.get_pretrained_cfg("densenet121").to_dict() == before)
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    first, second = out.stdout.splitlines()
    assert first.startswith("sipakmed_cells cervattn/rcan_densenet121.sipakmed_cells (3, 256, 256) 1.0 features.conv0")
    assert "'rcan_densenet121.sipakmed_cells', 'rcan_densenet121.tv_in1k'" in first
    assert second == "True"  # timm's own entries untouched


def test_temporary_release_is_listed_and_removed(exported):
    rel = release_of(exported[1])
    assert NAME not in cervattn.list_pretrained()
    with temporary_release(rel):
        assert get_release(NAME) is rel
        assert NAME in cervattn.list_pretrained("test_rcan*")
        cfg = hub.pretrained_cfg(ARCH)  # untagged cervattn arch -> its first release
        assert cfg["hf_hub_id"] == REPO_ID and cfg["tag"] == "sipakmed_cells"
        assert cfg["input_size"] == (3, 64, 64) and tuple(cfg["label_names"]) == SIPAKMED_CLASSES
    assert get_release(NAME) is None and NAME not in cervattn.list_pretrained()


# --------------------------------------------------------------------------------------------------
# Loading from the cache and from mirrors


def test_pretrained_from_hf_cache_is_the_exported_model(exported, release, cache):
    model = cervattn.create_model(NAME, pretrained=True, cache_dir=cache)
    assert torch.equal(outputs(model), outputs(exported[0]))
    for key, value in exported[0].state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    cfg = model.pretrained_cfg
    assert cfg["hf_hub_id"] == REPO_ID and cfg["tag"] == "sipakmed_cells" and cfg["num_classes"] == 5
    assert cfg["file"].startswith(str(cache)) and cfg["license"] == "apache-2.0"


def test_default_cache_and_default_tag(exported, release, cache, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model = cervattn.create_model(ARCH, pretrained=True)  # untagged: the architecture's best release
    assert torch.equal(outputs(model), outputs(exported[0]))


def test_pinned_revision_wins_over_moved_main(exported, release, cache, tmp_path):
    # main moves to a commit whose file differs; the release pins COMMIT, so COMMIT is loaded.
    other = tmp_path / "other"
    shutil.copytree(exported[1].folder, other)
    save_file(trained_model(seed=7).state_dict(), str(other / "model.safetensors"))
    add_to_hf_cache(cache, REPO_ID, other, commit=OTHER_COMMIT, ref="main")
    model = cervattn.create_model(NAME, pretrained=True, cache_dir=cache)
    assert torch.equal(outputs(model), outputs(exported[0]))
    with pytest.raises(hub.IntegrityError, match=f"revision '{OTHER_COMMIT}'.*verify=False"):
        cervattn.create_model(NAME, pretrained=True, cache_dir=cache, revision=OTHER_COMMIT)
    with pytest.warns(UserWarning, match="verify=False"):
        unverified = cervattn.create_model(NAME, pretrained=True, cache_dir=cache, revision=OTHER_COMMIT, verify=False)
    assert not torch.equal(outputs(unverified), outputs(exported[0]))


def test_unpublished_release_loads_main(exported, cache):
    with temporary_release(release_of(exported[1], revision=None)):
        model = cervattn.create_model(NAME, pretrained=True, cache_dir=cache)
    assert torch.equal(outputs(model), outputs(exported[0]))


@pytest.mark.parametrize("layout", ["org/name", "name"])
def test_mirror_folder_is_used_before_the_cache(exported, release, cache, tmp_path, layout):
    blob = blob_of(cache / f"models--cervattn--{NAME}")
    blob.write_bytes(b"not the weights")  # the cache would fail: the mirror must be read first
    root = tmp_path / "m"
    shutil.copytree(exported[1].folder, root / (REPO_ID if layout == "org/name" else NAME))
    path = hub.resolve_weights(NAME, mirror=root, cache_dir=cache)
    assert path == root / (REPO_ID if layout == "org/name" else NAME) / "model.safetensors"
    with pytest.raises(hub.IntegrityError):
        hub.resolve_weights(NAME, cache_dir=cache)


def test_mirror_argument_env_and_checkout(exported, release, mirror, monkeypatch, tmp_path):
    model = cervattn.create_model(NAME, pretrained=True, mirror=mirror)
    assert torch.equal(outputs(model), outputs(exported[0]))
    assert model.pretrained_cfg["file"] == str(mirror / HUB_ORG / NAME / "model.safetensors")
    monkeypatch.setenv(hub.ENV_MIRROR, os.pathsep.join([str(tmp_path / "nothing-here"), str(mirror)]))
    with pytest.warns(UserWarning, match="CERVATTN_MIRROR names"):
        assert hub.resolve_weights(NAME).is_relative_to(mirror)
    monkeypatch.delenv(hub.ENV_MIRROR)
    checkout = tmp_path / "checkout-hub"
    shutil.copytree(exported[1].folder, checkout / NAME)  # the repository's hub/ layout
    monkeypatch.setattr(hub, "CHECKOUT_MIRROR", checkout)
    assert hub.resolve_weights(NAME) == checkout / NAME / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        hub.resolve_weights(NAME, mirror=tmp_path / "typo")


def test_hf_hub_and_local_dir_names(exported, release, cache, mirror):
    want = outputs(exported[0])
    by_timm = timm.create_model(f"hf-hub:{REPO_ID}", pretrained=True, cache_dir=cache)
    assert torch.equal(outputs(by_timm), want)
    assert tuple(by_timm.pretrained_cfg["label_names"]) == SIPAKMED_CLASSES
    local = timm.create_model(f"local-dir:{exported[1].folder}", pretrained=True)
    assert torch.equal(outputs(local), want)
    ours = cervattn.create_model(f"hf-hub:{REPO_ID}@{COMMIT}", pretrained=True, mirror=mirror)  # verified route
    assert torch.equal(outputs(ours), want) and ours.pretrained_cfg["file"].startswith(str(mirror))
    assert torch.equal(outputs(cervattn.create_model(f"local-dir:{exported[1].folder}", pretrained=True)), want)


def test_download_checks_every_file(exported, release, cache):
    folder = hub.download(NAME, cache_dir=cache)
    assert folder == cache / f"models--cervattn--{NAME}" / "snapshots" / COMMIT
    assert sorted(p.name for p in folder.iterdir()) == sorted(exported[1].sha256)
    assert hub.verify_folder(exported[1].folder) == dict(release.sha256)


# --------------------------------------------------------------------------------------------------
# Integrity: tampered, truncated, interrupted


def test_tampered_mirror_file_is_rejected_and_nothing_loaded(release, mirror, no_load):
    path = mirror / HUB_ORG / NAME / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped bit pattern in a weight: still a valid safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(hub.IntegrityError) as info:
        cervattn.create_model(NAME, pretrained=True, mirror=mirror)
    message = str(info.value)
    assert release.sha256["model.safetensors"] in message and str(path) in message
    assert "Nothing was loaded" in message
    assert no_load == []


def test_truncated_cache_file_is_rejected_with_the_fix(release, cache, no_load):
    blob = blob_of(cache / f"models--cervattn--{NAME}")
    blob.write_bytes(blob.read_bytes()[:1000])
    with pytest.raises(hub.IntegrityError) as info:
        cervattn.create_model(NAME, pretrained=True, cache_dir=cache)
    message = str(info.value)
    assert str(blob) in message and "force_download=True" in message and "Delete" in message
    assert no_load == []
    with pytest.raises(ValueError, match="force_download=True needs the network"):
        cervattn.create_model(NAME, pretrained=True, cache_dir=cache, force_download=True)


def test_interrupted_download_leaves_no_loadable_entry(exported, release, tmp_path, no_load):
    # What hf_hub_download leaves when killed mid-download: a .incomplete blob, no snapshot link.
    cache = tmp_path / "interrupted"
    blobs = cache / f"models--cervattn--{NAME}" / "blobs"
    blobs.mkdir(parents=True)
    data = (exported[1].folder / "model.safetensors").read_bytes()
    (blobs / (hashlib.sha256(data).hexdigest() + ".incomplete")).write_bytes(data[: len(data) // 2])
    with pytest.raises(hub.WeightsNotFoundError):
        cervattn.create_model(NAME, pretrained=True, cache_dir=cache)
    assert no_load == []


def test_offline_nothing_cached_says_where_it_looked_and_how_to_fix(release, tmp_path, monkeypatch):
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    monkeypatch.setattr(hub, "CHECKOUT_MIRROR", tmp_path / "checkout-hub")
    with pytest.raises(hub.WeightsNotFoundError) as info:
        cervattn.create_model(NAME, pretrained=True, mirror=empty_mirror, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1" in message
    for looked in (empty_mirror / HUB_ORG / NAME, empty_mirror / NAME, tmp_path / "checkout-hub" / NAME,
                   tmp_path / "c" / f"models--cervattn--{NAME}"):
        assert str(looked) in message
    assert "go online" in message and "CERVATTN_MIRROR" in message and "mirror=" in message
    assert f"hf download {REPO_ID} --revision {COMMIT}" in message and "cervattn.hub.download" in message
    assert isinstance(info.value, FileNotFoundError)


def test_offline_timm_tag_error_is_helpful_and_mirror_serves_it(tmp_path):
    """timm's own tags (ImageNet starts) are not in cervattn's table: a mirror copy is loaded as timm
    would (unverified); without one, the offline error names the timm repository."""
    with pytest.raises(hub.WeightsNotFoundError, match="timm/test_resnet.r160_in1k"):
        cervattn.create_model("test_resnet.r160_in1k", pretrained=True, cache_dir=tmp_path / "c")
    src = trained_model("test_resnet")
    folder = tmp_path / "mirror" / "timm" / "test_resnet.r160_in1k"
    folder.mkdir(parents=True)
    save_file(src.state_dict(), str(folder / "model.safetensors"))
    model = cervattn.create_model("test_resnet.r160_in1k", pretrained=True, mirror=tmp_path / "mirror")
    assert torch.equal(outputs(model), outputs(src))


# --------------------------------------------------------------------------------------------------
# Names and tags


def test_unknown_tag_lists_the_available_tags(release):
    with pytest.raises(ValueError, match=rf"Did you mean {NAME}\?") as info:
        cervattn.create_model(f"{ARCH}.sipakmed_cels")
    assert "Available" in str(info.value)
    with pytest.raises(ValueError, match="rcan_densenet121.tv_in1k"):
        cervattn.create_model("rcan_densenet121.imagenet")


def test_baseline_release_leaves_timm_entries_alone(tmp_path):
    """The seed paper's baselines are timm's own architectures (resnet50, densenet121); their
    SIPaKMeD release is reached through cervattn, timm's registry is not modified. timm's tiny
    test_resnet stands in for resnet50."""
    before = timm.models.get_pretrained_cfg("test_resnet").to_dict()
    src = trained_model("test_resnet")
    src.reset_classifier(5)
    result = export_model(src, tmp_path / "test_resnet.sipakmed_cells", arch="test_resnet")
    mirror = tmp_path / "mirror"
    shutil.copytree(result.folder, mirror / HUB_ORG / result.name)
    with temporary_release(release_of(result)):
        assert "test_resnet.sipakmed_cells" in cervattn.list_pretrained()
        model = cervattn.create_model("test_resnet.sipakmed_cells", pretrained=True, mirror=mirror)
        assert torch.equal(outputs(model), outputs(src))
        assert tuple(model.pretrained_cfg["label_names"]) == SIPAKMED_CLASSES
        assert model.pretrained_cfg["hf_hub_id"] == "cervattn/test_resnet.sipakmed_cells"
        assert model.pretrained_cfg["input_size"] == (3, 160, 160) and model.pretrained_cfg["crop_pct"] == 1.0
        plain = cervattn.create_model("test_resnet")  # untagged timm name: timm's default, not the release
        assert plain.pretrained_cfg["tag"] == "r160_in1k" and plain.num_classes == 1000
    assert timm.models.get_pretrained_cfg("test_resnet").to_dict() == before
    assert "test_resnet.sipakmed_cells" not in timm.list_pretrained()


# --------------------------------------------------------------------------------------------------
# Fine-tuning and user checkpoints


def test_fine_tune_num_classes_drops_only_the_classifier(exported, release, mirror):
    src = exported[0].state_dict()
    model = cervattn.create_model(NAME, pretrained=True, mirror=mirror, num_classes=3)
    assert model.get_classifier().out_features == 3 and outputs(model).shape == (2, 3)
    for key, value in model.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(value, src[key]), key
    gray = cervattn.create_model(NAME, pretrained=True, mirror=mirror, in_chans=1)
    torch.testing.assert_close(gray.features.conv0.weight, src["features.conv0.weight"].sum(1, keepdim=True))
    trunk = cervattn.create_model(NAME, pretrained=True, mirror=mirror, features_only=True).eval()
    with torch.no_grad():
        assert torch.equal(trunk(X)[-1], exported[0].forward_features(X))


def test_fine_tune_is_strict_about_everything_but_the_classifier(exported, tmp_path):
    state = load_file(str(exported[1].folder / "model.safetensors"))
    del state["features.norm5.bias"]
    folder = tmp_path / "mirror" / NAME
    folder.mkdir(parents=True)
    save_file(state, str(folder / "model.safetensors"))
    broken = Release(NAME, {"model.safetensors": hub.sha256_file(folder / "model.safetensors")}, cfg=exported[1].cfg)
    with temporary_release(broken):
        with pytest.raises(RuntimeError, match="features.norm5.bias"):
            cervattn.create_model(NAME, pretrained=True, mirror=tmp_path / "mirror", num_classes=3)


def test_fp16_release_loads_into_fp32(tmp_path):
    src = trained_model(seed=3)
    result = export_model(src, tmp_path / NAME, dtype="fp16")
    assert all(t.dtype in (torch.float16, torch.int64) for t in load_file(str(result.folder / "model.safetensors")).values())
    with temporary_release(release_of(result)):
        model = cervattn.create_model(NAME, pretrained=True, mirror=tmp_path)
    for key, value in src.state_dict().items():
        got = model.state_dict()[key]
        assert got.dtype == value.dtype, key
        want = value.half().to(value.dtype) if value.is_floating_point() else value
        assert torch.equal(got, want), key


def test_user_pth_checkpoint_loads_with_weights_only(exported, tmp_path):
    src = exported[0]
    plain = tmp_path / "mine.pth"
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}, "epoch": 3}, plain)
    model = cervattn.create_model(ARCH, checkpoint_path=plain)
    assert torch.equal(outputs(model), outputs(src))
    safe = tmp_path / "mine.safetensors"
    save_file(src.state_dict(), str(safe))
    assert torch.equal(outputs(cervattn.create_model(ARCH, checkpoint_path=safe)), outputs(src))

    import argparse

    pickled = tmp_path / "pickled.pt"
    torch.save({"model": src.state_dict(), "args": argparse.Namespace(lr=0.1)}, pickled)
    with pytest.raises(ValueError, match="never does"):
        cervattn.create_model(ARCH, checkpoint_path=pickled)
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        hub.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="no state dict at key 'model_ema'"):
        hub.load_checkpoint(plain, key="model_ema")


def test_resolve_weights_of_a_non_release_says_so():
    with pytest.raises(ValueError, match="not a cervattn release"):
        hub.resolve_weights("rcan_densenet121.tv_in1k")


def test_no_warning_on_a_verified_load(release, mirror):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cervattn.create_model(NAME, pretrained=True, mirror=mirror)
