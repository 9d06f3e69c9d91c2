"""Registry-driven model tests: every architecture cervattn registers is tested here, no new code
needed for a new variant (timm contract, shapes, gradients, features_only, round trips)."""

import copy
import functools

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models import group_parameters

import cervattn
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.layers import ATTENTION_LAYERS

ALL = cervattn.list_models(include_test=True)
TINY = cervattn.list_models("test_*", include_test=True)
SIZE = 32  # the smallest input every model must accept
DEFAULT_FULL = {"rcan_densenet121", "ran_resnet50"}  # full-size models of the default (non-slow) run


def sweep(names):
    """Every model; the full-size ones beyond DEFAULT_FULL run with ``-m slow`` (the tiny
    ``test_*`` variants exercise the same code paths in the default run)."""
    return [n if n in TINY or n in DEFAULT_FULL else pytest.param(n, marks=pytest.mark.slow) for n in names]


@functools.cache
def _built(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return cervattn.create_model(name)


def fresh(name: str) -> torch.nn.Module:
    return copy.deepcopy(_built(name))


def test_registry_lists_every_family():
    names = set(cervattn.list_models())
    for depth in (18, 34, 50, 101):
        assert {f"ran_resnet{depth}", f"rcan_resnet{depth}", f"rcab_resnet{depth}"} <= names
    for depth in (121, 161, 169, 201):
        assert {f"ran_densenet{depth}", f"rcan_densenet{depth}", f"rcab_densenet{depth}"} <= names
    assert {"ran_attention56", "ran_attention92"} <= names
    assert not any(n.startswith("test_") for n in names)
    assert set(TINY) <= set(ALL)


def test_timm_sees_models_after_import():
    model = timm.create_model("rcan_densenet121", num_classes=3).eval()
    assert model(torch.randn(1, 3, SIZE, SIZE)).shape == (1, 3)
    assert "rcan_densenet121" in timm.list_models(module="attention_densenets")
    assert "rcan_densenet121" not in timm.list_models(module="densenet")  # no mixing with timm's own


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="rcan_densenet121"):
        cervattn.create_model("rcan_densnet121")


@pytest.mark.parametrize("name", ALL)
def test_pretrained_cfg_complete(name):
    model = _built(name)
    cfg = model.pretrained_cfg
    for key in ("mean", "std", "input_size", "crop_pct", "interpolation", "first_conv", "classifier",
                "label_names", "license", "min_input_size"):
        assert cfg.get(key) is not None, f"{name}: pretrained_cfg lacks {key}"
    assert tuple(cfg["label_names"]) == SIPAKMED_CLASSES == tuple(cfg["label_names"][: model.num_classes])
    assert cfg["num_classes"] == model.num_classes == 5
    assert isinstance(model.get_submodule(cfg["first_conv"]), torch.nn.Conv2d)
    assert model.get_submodule(cfg["classifier"]) is model.get_classifier()
    assert cfg["min_input_size"][1:] == (SIZE, SIZE)


@pytest.mark.parametrize("tag", cervattn.list_pretrained())
def test_hub_ids_follow_grammar(tag):
    cfg = cervattn.hub.pretrained_cfg(tag)
    arch, _, weights = tag.partition(".")
    if cfg["hf_hub_id"].startswith("timm/"):  # ImageNet start: the backbone's own timm repo
        backbone = cfg["hf_hub_id"].removeprefix("timm/")
        assert backbone.split(".")[1] == weights and arch.split("_", 1)[1] == backbone.split(".")[0]
    else:
        assert cfg["hf_hub_id"] == f"{cervattn.constants.HUB_ORG}/{tag}"


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_parameter_gets_gradient(name):
    model = fresh(name).train()
    out = model(torch.randn(2, 3, SIZE, SIZE))
    assert out.shape == (2, 5)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: parameters without gradient: {missing[:5]}"
    assert any(isinstance(m, ATTENTION_LAYERS) for m in model.modules())


@pytest.mark.parametrize("name", sweep(ALL))
def test_odd_input_size_and_head_contract(name):
    model = fresh(name).eval()
    x = torch.randn(1, 3, 33, 47)  # odd sizes
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        pre = model.forward_head(feats, pre_logits=True)
        assert torch.allclose(model(x), logits, atol=1e-5)
    assert pre.shape == (1, model.num_features)
    model.reset_classifier(7)
    assert model.get_classifier().out_features == 7 and model(x).shape == (1, 7)
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)


@pytest.mark.parametrize("name", sweep(ALL))
def test_features_only_matches_forward_intermediates(name):
    full = fresh(name).eval()
    torch.manual_seed(0)
    feat_model = cervattn.create_model(name, features_only=True).eval()
    feat_model.load_state_dict(
        {k: v for k, v in zip(feat_model.state_dict(), _aligned(full, feat_model))}, strict=True
    )
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        feats = feat_model(x)
        ref = full.forward_intermediates(x, intermediates_only=True)
        last = full.forward_features(x)
    assert [f.shape[1] for f in feats] == feat_model.feature_info.channels()
    assert len(feats) == len(ref) == 5
    for got, want in zip(feats, ref):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(feats[-1], last)
    names = [n for n, _ in feat_model.named_modules()]
    assert any(isinstance(m, ATTENTION_LAYERS) for m in feat_model.modules()), names[:5]


def _aligned(full, feat_model):
    """The full model's tensors in the feature model's order (same modules, flattened names)."""
    full_sd = full.state_dict()
    out = []
    for key in feat_model.state_dict():
        candidates = [key, key.replace("_", ".", 1)]
        match = next((c for c in candidates if c in full_sd), None)
        assert match is not None, key
        out.append(full_sd[match])
    return out


@pytest.mark.parametrize("name", sweep(ALL))
def test_safetensors_round_trip(name, tmp_path):
    model = fresh(name).eval()
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    other = cervattn.create_model(name).eval()
    other.load_state_dict(load_file(str(path)))
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


@pytest.mark.parametrize("name", ALL)
def test_group_matcher_covers_every_parameter(name):
    model = _built(name)
    groups = group_parameters(model, model.group_matcher(coarse=False))
    grouped = {p for names in groups.values() for p in names}
    assert grouped == {n for n, _ in model.named_parameters()}
    coarse = group_parameters(model, model.group_matcher(coarse=True))
    assert len(coarse) >= 3


@pytest.mark.parametrize("name", TINY)
def test_constructor_arguments(name):
    model = cervattn.create_model(name, num_classes=3, in_chans=1, drop_rate=0.2, global_pool="max").eval()
    assert model(torch.randn(2, 1, 40, 40)).shape == (2, 3)
    assert model.pretrained_cfg["label_names"] is not None


@pytest.mark.parametrize("name", TINY)
def test_grad_checkpointing_same_gradients(name):
    x = torch.randn(2, 3, SIZE, SIZE)
    grads = []
    for enable in (False, True):
        model = fresh(name).train()
        model.set_grad_checkpointing(enable)
        model(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_channels_last_and_export(name):
    model = fresh(name).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        ref = model(x)
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        torch.testing.assert_close(cl(x.to(memory_format=torch.channels_last)), ref, rtol=1e-4, atol=1e-4)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_torch_compile(name):
    model = fresh(name).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-4)


BACKBONE_START = [t for t in cervattn.list_pretrained() if "in1k" in t]


def _smallest_per_family(tags):
    """One ImageNet-start tag per (attention, backbone family): the shallowest backbone."""
    chosen = {}
    for tag in sorted(tags, key=lambda t: int("".join(filter(str.isdigit, t.split(".")[0])))):
        attention, backbone = tag.split(".")[0].split("_", 1)
        chosen.setdefault((attention, backbone.rstrip("0123456789")), tag)
    return sorted(chosen.values())


@pytest.mark.parametrize("tag", _smallest_per_family(BACKBONE_START))
def test_imagenet_start_equals_backbone(tag, tmp_path):
    """A timm backbone state dict saved locally (no network) loads into the trunk strictly and the
    attention starts at the identity, so the model reproduces the backbone."""
    cfg = timm.models.get_pretrained_cfg(tag)
    backbone_name = cfg.hf_hub_id.removeprefix("timm/").split(".")[0]
    torch.manual_seed(1)
    backbone = timm.create_model(backbone_name).eval()
    for m in backbone.modules():  # non-trivial BN statistics, so a wrong mapping would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / "backbone.safetensors"
    save_file(backbone.state_dict(), str(path))
    model = cervattn.create_model(tag, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    gammas = [m.gamma.item() for m in model.modules() if isinstance(m, ATTENTION_LAYERS)]
    assert gammas and all(g == 0.0 for g in gammas)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_head(model.forward_features(x), pre_logits=True),
            backbone.forward_head(backbone.forward_features(x), pre_logits=True),
        )
    assert model(x).shape == (2, 5)


def test_imagenet_start_is_strict(tmp_path):
    backbone = timm.create_model("resnet18")
    sd = backbone.state_dict()
    sd["layer1.0.conv1.extra"] = torch.zeros(1)
    path = tmp_path / "bad.safetensors"
    save_file(sd, str(path))
    with pytest.raises(KeyError, match="unexpected"):
        cervattn.create_model("ran_resnet18.a1_in1k", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
