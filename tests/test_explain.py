"""cervattn.explain: input forms, methods on every model family, IG properties, state restoration."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cervattn
from cervattn import attribution_methods as am
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.explanations import PAPER_IG, Explanation, explain, explain_files, load_explanation

FAMILIES = cervattn.list_models("test_*", include_test=True)
SPATIAL = ("integrated_gradients", "saliency", "smoothgrad", "gradcam")
FAST = {"n_steps": 8, "nt_samples": 3}


def _model(name: str = "test_rcan_densenet") -> torch.nn.Module:
    torch.manual_seed(0)
    return cervattn.create_model(name)


def _image(seed: int = 0, size: tuple[int, int] = (70, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((*size, 3), 230, np.uint8)  # bright slide
    img[15:55, 20:60] = rng.integers(40, 160, (40, 40, 3))  # a dark "cell"
    return img


def _hook_free(model: torch.nn.Module) -> bool:
    return all(
        not getattr(m, name, {})
        for m in model.modules()
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                     "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs")
    )


def _state(model: torch.nn.Module):
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]




def test_names_family_list_not_empty():
    assert len(FAMILIES) >= 3, FAMILIES


# --------------------------------------------------------------------------------- methods


@pytest.mark.parametrize("name", FAMILIES)
def test_every_method_on_every_family(name):
    model = _model(name)
    has_mask = any(isinstance(m, cervattn.layers.SoftMaskBranch) for m in model.modules())
    has_ca = any(isinstance(m, cervattn.layers.ChannelAttention) for m in model.modules())
    before = _state(model)
    x = torch.randn(1, 3, 32, 32)  # smallest accepted size keeps this fast
    for method in SPATIAL:
        e = explain(model, x, method=method, n_steps=4, nt_samples=2)
        channels = 1 if method == "gradcam" else 3
        assert e.attributions.shape == (1, channels, 32, 32)
        assert np.isfinite(e.attributions).all()
        assert np.abs(e.attributions).max() > 0, method
        assert e.image.shape == (1, 32, 32, 3) and e.image.dtype == np.uint8
        assert e.labels[0] in SIPAKMED_CLASSES
    if has_mask:
        e = explain(model, x, method="soft_mask")
        assert e.attributions.shape == (1, 1, 32, 32)
        assert ((e.attributions > 0) & (e.attributions < 1)).all()
        assert e.attention and all(v.shape == (1, 32, 32) for v in e.attention.values())
    else:
        with pytest.raises(ValueError, match="SoftMaskBranch"):
            explain(model, x, method="soft_mask")
    if has_ca:
        e = explain(model, x, method="channel_attention")
        assert e.attributions is None and e.attention
        for v in e.attention.values():
            assert v.ndim == 2 and v.shape[0] == 1 and ((v > 0) & (v < 1)).all()
    else:
        with pytest.raises(ValueError, match="ChannelAttention"):
            explain(model, x, method="channel_attention")
    assert _state(model) == before
    assert _hook_free(model)


def test_plain_timm_model_and_gradcam_layer():
    import timm

    model = timm.create_model("resnet18", num_classes=5, pretrained_cfg_overlay={"input_size": (3, 32, 32)})
    e = explain(model, _image(), method="gradcam")
    assert e.params["layer"] == "layer4" and e.attributions.shape == (1, 1, 32, 32)
    assert e.label_names is None and e.labels[0] in {"0", "1", "2", "3", "4"}
    e2 = explain(model, _image(), method="gradcam", layer="layer3")
    assert e2.params["layer"] == "layer3"
    with pytest.raises(ValueError, match="not a submodule"):
        explain(model, _image(), method="gradcam", layer="nope")


def test_unknown_method():
    with pytest.raises(ValueError, match="integrated_gradients") as err:
        explain(_model(), _image(), method="intgrad")
    assert "intgrad" in str(err.value)


# --------------------------------------------------------------------------------- IG properties


class _SmoothNet(torch.nn.Module):
    """A smooth (tanh) classifier: IG's integral is then approximated to near machine precision."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=2)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).mean((2, 3)))


def test_ig_completeness_smooth_model_float64():
    torch.manual_seed(0)
    model = _SmoothNet().double()
    x = torch.randn(2, 3, 40, 40, dtype=torch.float64)
    e = explain(model, x, n_steps=50, baselines="black", target=[0, 3])
    mean = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float64).view(1, 3, 1, 1)  # timm's default
    std = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        diff = (model(x) - model(((0 - mean) / std).expand_as(x)))[[0, 1], [0, 3]].numpy()
    total = e.attributions.astype(np.float64).sum((1, 2, 3))
    np.testing.assert_allclose(total, diff, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e.convergence_delta, total - diff, atol=1e-6)


def test_ig_completeness_cervattn_model_float64():
    model = _model().double()
    x = torch.randn(2, 3, 48, 48, dtype=torch.float64)
    e = explain(model, x, n_steps=128, baselines="black", target=[0, 3])
    mean = torch.tensor(model.pretrained_cfg["mean"], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(model.pretrained_cfg["std"], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        model.eval()
        diff = (model(x) - model(((0 - mean) / std).expand_as(x)))[[0, 1], [0, 3]].numpy()
    total = e.attributions.astype(np.float64).sum((1, 2, 3))
    # ReLU networks are piecewise linear along the path: a few percent at 128 steps.
    assert np.abs(total - diff).max() <= 0.03 * np.abs(diff).max(), (total, diff)
    # The reported delta is that very difference.
    np.testing.assert_allclose(e.convergence_delta, total - diff, atol=1e-5)


@pytest.mark.parametrize("baselines", ["white", "blurred", "mean"])
def test_ig_delta_small_for_other_baselines(baselines):
    torch.manual_seed(0)
    model = _SmoothNet().double()
    x = torch.randn(1, 3, 40, 40, dtype=torch.float64)
    e = explain(model, x, baselines=baselines, n_steps=32, output="log_softmax")
    assert abs(float(e.convergence_delta[0])) < 0.05 * (abs(float(e.attributions.sum())) + 0.1)


def test_black_baseline_is_normalised_black_not_zero():
    x = torch.zeros(1, 3, 32, 32)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.5])
    b = am.make_baselines("black", x, mean, std)
    np.testing.assert_allclose(b[0, :, 0, 0].numpy(), (-mean / std).numpy(), rtol=1e-6)
    w = am.make_baselines("white", x, mean, std)
    np.testing.assert_allclose(w[0, :, 0, 0].numpy(), ((1 - mean) / std).numpy(), rtol=1e-6)
    assert torch.equal(am.make_baselines("mean", x, mean, std), x)
    n = am.make_baselines("noise", x, mean, std) * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    assert 0 <= float(n.min()) and float(n.max()) <= 1 and float(n.std()) > 0.2
    with pytest.raises(ValueError, match="broadcast"):
        am.make_baselines(torch.zeros(2, 5, 5), x, mean, std)


def test_paper_preset_delta_is_mean_over_noise_trials():
    model = _model()
    e = explain(model, _image(), **{**PAPER_IG, "n_trials": 3, "n_steps": 6})
    assert e.params["n_trials"] == 3 and e.params["baselines"] == "noise"
    assert e.params["integration"] == "riemann_left" and e.params["output"] == "softmax"
    # Recompute: attributions sum minus (p(x) - mean_t p(b_t)).
    x = torch.from_numpy(e.inputs)
    mean, std = torch.tensor(model.pretrained_cfg["mean"]), torch.tensor(model.pretrained_cfg["std"])
    model.eval()
    with torch.no_grad():
        t = int(e.target[0])
        px = torch.softmax(model(x), 1)[0, t]
        pb = [torch.softmax(model(am.make_baselines("noise", x, mean, std, trial=i)), 1)[0, t] for i in range(3)]
    expected = e.attributions.sum() - float(px - torch.stack(pb).mean())
    np.testing.assert_allclose(e.convergence_delta[0], expected, atol=1e-5)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "gradcam", "soft_mask"])
def test_batch_equals_one_by_one(method):
    model = _model("test_ran_densenet")
    imgs = [_image(s) for s in range(3)]
    batch = explain(model, imgs, method=method, n_steps=8, target=[0, 2, "Parabasal"])
    assert len(batch) == 3
    for i, img in enumerate(imgs):
        one = explain(model, img, method=method, n_steps=8, target=int(batch.target[i]))
        np.testing.assert_allclose(batch.attributions[i], one.attributions[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batch.probabilities[i], one.probabilities[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(batch.image[i], one.image[0])


def test_noise_baselines_batch_invariant_and_seeded():
    model = _model()
    imgs = [_image(0), _image(1)]
    kw = {"baselines": "noise", "n_trials": 2, "n_steps": 4}
    batch = explain(model, imgs, **kw)
    one = explain(model, imgs[1], **kw)
    np.testing.assert_allclose(batch.attributions[1], one.attributions[0], rtol=1e-4, atol=1e-7)
    other = explain(model, imgs[1], seed=1, **kw)
    assert not np.allclose(other.attributions, one.attributions)


def test_internal_batch_size_does_not_change_ig():
    model = _model()
    a = explain(model, _image(), n_steps=10, internal_batch_size=1)
    b = explain(model, _image(), n_steps=10, internal_batch_size=10)
    c = explain(model, [_image(), _image(1)], n_steps=10, internal_batch_size=25)
    assert a.params["internal_batch_size"] == 1
    np.testing.assert_allclose(a.attributions, b.attributions, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(a.attributions[0], c.attributions[0], rtol=1e-4, atol=1e-7)


def test_auto_internal_batch_size_bounds_rows():
    cpu = torch.device("cpu")
    assert am.auto_internal_batch_size(224, 224, cpu) == 4
    assert am.auto_internal_batch_size(64, 64, cpu) == 49
    assert am.auto_internal_batch_size(224, 224, torch.device("cuda")) == 32


def test_outputs_differ_and_bad_output():
    model = _model()
    logit = explain(model, _image(), method="saliency", output="logit")
    soft = explain(model, _image(), method="saliency", output="softmax")
    assert not np.allclose(logit.attributions, soft.attributions)
    with pytest.raises(ValueError, match="log_softmax"):
        explain(model, _image(), output="probability")


def test_rng_state_untouched():
    model = _model()
    state = torch.get_rng_state()
    explain(model, _image(), method="smoothgrad", nt_samples=2)
    explain(model, _image(), baselines="noise", n_trials=2, n_steps=2)
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------------- targets


def test_target_by_index_name_and_default():
    model = _model()
    by_index = explain(model, _image(), method="saliency", target=1)
    by_name = explain(model, _image(), method="saliency", target="Koilocytotic")
    np.testing.assert_array_equal(by_index.attributions, by_name.attributions)
    assert by_name.labels == ["Koilocytotic"] and by_name.target.tolist() == [1]
    default = explain(model, _image(), method="saliency")
    assert default.target.tolist() == default.predicted.tolist()
    per_image = explain(model, [_image(), _image(1)], method="saliency", target=["Parabasal", 0])
    assert per_image.target.tolist() == [3, 0]


def test_target_as_array_or_tensor_and_tensor_baseline():
    model = _model()
    ref = explain(model, _image(), n_steps=4, target=2, baselines="mean")
    for t in (np.array([2]), torch.tensor(2), np.int64(2)):
        assert explain(model, _image(), method="saliency", target=t).target.tolist() == [2]
    e = explain(model, _image(), n_steps=4, target=2, baselines=torch.zeros(3, 64, 64))
    np.testing.assert_allclose(e.attributions, ref.attributions, rtol=1e-5, atol=1e-8)
    assert e.params["baselines"] == "tensor"


def test_unknown_target_name_lists_names():
    with pytest.raises(ValueError) as err:
        explain(_model(), _image(), target="Koilocytic")
    msg = str(err.value)
    assert "'Koilocytic'" in msg and all(c in msg for c in SIPAKMED_CLASSES)
    assert "Did you mean 'Koilocytotic'" in msg


def test_bad_target_index_and_count():
    with pytest.raises(ValueError, match="out of range"):
        explain(_model(), _image(), target=5)
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        explain(_model(), _image(), target=[0, 1])
    with pytest.raises(TypeError, match="target"):
        explain(_model(), _image(), target=1.5)


# --------------------------------------------------------------------------------- inputs


def test_input_forms_agree(tmp_path):
    model = _model()
    img = _image()
    path = tmp_path / "cell.png"
    Image.fromarray(img).save(path)
    kw = {"method": "saliency", "target": 0}
    ref = explain(model, img, **kw)
    for form in (str(path), path, Image.fromarray(img), [img]):
        e = explain(model, form, **kw)
        np.testing.assert_allclose(e.attributions, ref.attributions, rtol=1e-5, atol=1e-8)
    assert explain(model, path, **kw).sources == (str(path),)
    # A tensor is taken as the already-normalised model input.
    t = explain(model, torch.from_numpy(ref.inputs[0]), **kw)
    np.testing.assert_allclose(t.attributions, ref.attributions, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(t.image, ref.image)


def test_grayscale_rgba_16bit_converted():
    model = _model()
    kw = {"method": "saliency", "target": 0}
    gray = _image()[..., 0]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    ref = explain(model, rgb, **kw).attributions
    for form in (gray, gray[..., None], Image.fromarray(gray), (gray.astype(np.uint16) * 257)):
        np.testing.assert_allclose(explain(model, form, **kw).attributions, ref, rtol=1e-5, atol=1e-8)
    im16 = Image.fromarray(gray.astype(np.uint16) * 257)
    assert im16.mode.startswith("I")
    np.testing.assert_allclose(explain(model, im16, **kw).attributions, ref, rtol=1e-5, atol=1e-8)
    opaque = np.concatenate([rgb, np.full_like(gray[..., None], 255)], axis=2)
    np.testing.assert_allclose(explain(model, opaque, **kw).attributions, ref, rtol=1e-5, atol=1e-8)
    transparent = opaque.copy()
    transparent[..., 3] = 0  # composited on white
    e = explain(model, Image.fromarray(transparent, "RGBA"), **kw)
    assert (e.image == 255).all()


def test_wrong_channels_errors():
    model = _model()
    with pytest.raises(ValueError, match=r"1 channels .* takes 3"):
        explain(model, torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="channel-first"):
        explain(model, np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="HxWxC with C = 1"):
        explain(model, np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        explain(model, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(TypeError, match="normalised"):
        explain(model, torch.zeros(3, 64, 64, dtype=torch.uint8))


def test_tiny_images_rejected():
    model = _model()
    with pytest.raises(ValueError, match="20x31 px.*32x32"):
        explain(model, np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 32x32"):
        explain(model, torch.zeros(1, 3, 16, 64))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        explain(_model(), tmp_path / "nope.png")
    with pytest.raises(ValueError, match="explain_files"):
        explain(_model(), tmp_path)


def test_inference_mode_raises_clear_error():
    model = _model()
    before = _state(model)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="outside .*inference_mode"):
        explain(model, _image())
    assert _state(model) == before
    # Tensors made under inference mode are usable afterwards.
    with torch.inference_mode():
        x = torch.randn(1, 3, 64, 64)
    assert explain(model, x, method="saliency").attributions.shape == (1, 3, 64, 64)


def test_runs_inside_no_grad():
    with torch.no_grad():
        e = explain(_model(), _image(), n_steps=4)
    assert np.abs(e.attributions).sum() > 0


# --------------------------------------------------------------------------------- model state


def _mixed_state_model():
    model = _model("test_ran_resnet")
    model.train()
    model.layer1.eval()  # mixed modes must survive
    params = list(model.parameters())
    params[0].requires_grad_(False)
    params[-1].requires_grad_(False)
    return model


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad", "gradcam", "soft_mask"])
def test_model_state_restored_after_success(method):
    model = _mixed_state_model()
    user_hook = model.layer2.register_forward_hook(lambda *a: None)
    before = _state(model)
    explain(model, _image(), method=method, **FAST)
    assert _state(model) == before
    assert list(model.layer2._forward_hooks) == [user_hook.id]  # the user's own hook is kept
    user_hook.remove()
    assert _hook_free(model)
    assert all(p.grad is None for p in model.parameters())


def test_model_state_restored_after_error_in_captum(monkeypatch):
    from captum.attr import LayerGradCam

    model = _mixed_state_model()
    before = _state(model)

    def leaky_attribute(self, inputs, **kwargs):  # a method that dies with a hook registered
        self.layer.register_forward_hook(lambda *a: None)
        self.layer.register_full_backward_hook(lambda *a: None)
        raise RuntimeError("boom")

    monkeypatch.setattr(LayerGradCam, "attribute", leaky_attribute)
    with pytest.raises(RuntimeError, match="boom"):
        explain(model, _image(), method="gradcam")
    assert _state(model) == before
    assert _hook_free(model)


def test_model_state_restored_after_error_in_forward(monkeypatch):
    model = _mixed_state_model()
    before = _state(model)
    calls = {"n": 0}
    original = model.forward_head

    def failing_head(x, *a, **k):
        calls["n"] += 1
        if calls["n"] > 1:  # let the prediction pass, fail while the soft-mask hooks are in
            raise RuntimeError("head failed")
        return original(x, *a, **k)

    monkeypatch.setattr(model, "forward_head", failing_head)
    with pytest.raises(RuntimeError, match="head failed"):
        explain(model, _image(), method="soft_mask")
    assert _state(model) == before
    assert _hook_free(model)


def test_option_errors():
    with pytest.raises(ValueError, match="baselines='noise'"):
        explain(_model(), _image(), n_trials=3)
    with pytest.raises(ValueError, match="riemann_left"):
        explain(_model(), _image(), integration="simpson")
    with pytest.raises(ValueError, match="baselines='gray' is not supported; accepted: black"):
        explain(_model(), _image(), baselines="gray")
    with pytest.raises(ValueError, match="internal_batch_size"):
        explain(_model(), _image(), internal_batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        explain(_model(), _image(), n_steps=0)


# --------------------------------------------------------------------------------- result object


def test_explanation_indexing_and_dict():
    e = explain(_model(), [_image(0), _image(1)], method="saliency")
    one = e[1]
    assert isinstance(one, Explanation) and len(one) == 1
    np.testing.assert_array_equal(one.attributions[0], e.attributions[1])
    assert e[-1].target.tolist() == e.target[1:].tolist()
    assert e[np.int64(1)].target.tolist() == e.target[1:].tolist()
    with pytest.raises(IndexError):
        e[2]
    d = e.to_dict()
    assert d["labels"] == e.labels and d["attributions"] is e.attributions
    assert e.numpy() is e.attributions
    assert e.attribution_map.shape == (2, 64, 64)


@pytest.mark.parametrize("method", ["integrated_gradients", "soft_mask", "channel_attention"])
def test_save_load_round_trip(tmp_path, method):
    name = "test_ran_densenet" if method == "soft_mask" else "test_rcan_densenet"
    e = explain(_model(name), [_image(0), _image(1)], method=method, n_steps=4)
    path = e.save(tmp_path / "sub" / "expl")
    assert path.suffix == ".npz"
    back = load_explanation(path)
    assert back.method == e.method and back.label_names == e.label_names
    assert back.params == e.params and back.sources == e.sources
    for field in ("image", "inputs", "target", "probabilities"):
        np.testing.assert_array_equal(getattr(back, field), getattr(e, field))
    for field in ("attributions", "convergence_delta"):
        a, b = getattr(e, field), getattr(back, field)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    assert back.attention.keys() == e.attention.keys()
    for k in e.attention:
        np.testing.assert_array_equal(back.attention[k], e.attention[k])
    if method == "channel_attention":
        with pytest.raises(ValueError, match="no spatial attribution map"):
            _ = back.attribution_map


def test_load_rejects_foreign_npz(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a cervattn explanation"):
        Explanation.load(tmp_path / "x.npz")


# --------------------------------------------------------------------------------- files


def test_explain_files_writes_figures_and_predictions(tmp_path):
    src = tmp_path / "in" / "nested"
    src.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(_image(i)).save(src / f"cell{i}.png")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    records = explain_files(_model(), [tmp_path / "in"], out, batch_size=2, n_steps=4, progress=False)
    assert [r["path"] for r in records] == [str(src / f"cell{i}.png") for i in range(3)]
    for r in records:
        assert r["predicted"] in SIPAKMED_CLASSES and abs(sum(r["probabilities"].values()) - 1) < 1e-4
        assert r["convergence_delta"] is not None
        with Image.open(r["figure"]) as fig:
            assert np.asarray(fig.convert("RGB")).std() > 10
    meta = json.loads((out / "predictions.json").read_text())
    assert meta["notice"] == cervattn.RESEARCH_USE_NOTICE and len(meta["images"]) == 3
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 3 and rows[0]["predicted"] == records[0]["predicted"]
    assert f"p_{SIPAKMED_CLASSES[0]}" in rows[0]


def test_explain_files_other_method_and_errors(tmp_path):
    Image.fromarray(_image()).save(tmp_path / "a.png")
    recs = explain_files(_model(), tmp_path / "a.png", tmp_path / "o", method="gradcam", progress=False,
                         save_arrays=True)
    assert recs[0]["figure"].endswith("a_gradcam.png") and recs[0]["convergence_delta"] is None
    assert load_explanation(recs[0]["arrays"]).method == "gradcam"
    with pytest.raises(FileNotFoundError):
        explain_files(_model(), tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no image file"):
        explain_files(_model(), tmp_path / "empty", tmp_path / "o")
