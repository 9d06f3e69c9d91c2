"""cervattn.viz: the paper's Fig. 2 and overlays are written, headless, and not blank."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

import cervattn
from cervattn import viz
from cervattn.explanations import explain


@pytest.fixture(scope="module")
def explanations():
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet")
    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 225, np.uint8)
    img[16:48, 16:48] = rng.integers(30, 150, (32, 32, 3))
    ig = explain(model, [img, img[::-1]], n_steps=6)
    grad = explain(model, [img, img[::-1]], method="saliency", target=ig.target.tolist())
    ca = explain(model, img, method="channel_attention")
    return ig, grad, ca


def _assert_not_blank(path, min_colours: int = 8) -> np.ndarray:
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"))
    assert a.shape[0] > 100 and a.shape[1] > 100
    assert a.std() > 10
    assert len(np.unique(a.reshape(-1, 3), axis=0)) >= min_colours
    return a


def test_paper_figure_png_and_pdf(tmp_path, explanations):
    ig, grad, _ = explanations
    fig = viz.plot_paper_figure(ig, grad, index=1, path=tmp_path / "fig2.png")
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == [
        "image", "gradient overlay", "integrated gradients overlay", "gradient", "integrated gradients"
    ]
    a = _assert_not_blank(tmp_path / "fig2.png", min_colours=50)
    assert a.shape[1] > 2.5 * a.shape[0]  # one row of five panels
    ig.plot("paper", gradient=grad, path=tmp_path / "fig2.pdf")
    assert (tmp_path / "fig2.pdf").read_bytes()[:4] == b"%PDF"


def test_overlay_figure(tmp_path, explanations):
    ig, _, _ = explanations
    fig = ig.plot(path=tmp_path / "sub" / "overlay.png")
    assert len(fig.axes) == 3
    _assert_not_blank(tmp_path / "sub" / "overlay.png", min_colours=30)
    texts = [t.get_text() for t in fig.texts]
    assert cervattn.RESEARCH_USE_NOTICE in texts


def test_comparison_figure(tmp_path, explanations):
    ig, grad, ca = explanations
    fig = viz.plot_comparison({"rcan IG": ig, "rcan gradient": grad}, index=1,
                              captions={"rcan IG": "2 regions hold 80 %"}, path=tmp_path / "cmp.png")
    assert [ax.get_title() for ax in fig.axes] == ["image", "rcan IG\n2 regions hold 80 %", "rcan gradient"]
    a = _assert_not_blank(tmp_path / "cmp.png", min_colours=30)
    assert a.shape[1] > 1.5 * a.shape[0]  # one row of three panels
    with pytest.raises(ValueError, match="empty"):
        viz.plot_comparison({})
    with pytest.raises(ValueError, match="no spatial map"):
        viz.plot_comparison({"ig": ig, "ca": ca})
    with pytest.raises(ValueError, match="another image"):
        viz.plot_comparison({"a": ig, "b": ig[1:]}, index=0)


def test_channel_attention_bars(tmp_path, explanations):
    _, _, ca = explanations
    ca.plot(path=tmp_path / "ca.png")
    _assert_not_blank(tmp_path / "ca.png")


def test_attribution_to_gray_clips_at_percentile():
    a = np.zeros((3, 20, 20))
    a[:, 1:, :] = np.linspace(0, 1, 380).reshape(19, 20)
    a[:, 0, 0] = 1000.0  # one outlier pixel in 400 must not wash out the rest
    g = viz.attribution_to_gray(a, clip_percentile=99)
    assert g.shape == (20, 20) and g.max() == 1.0 and g.min() == 0.0
    assert 0.45 < g[10, 10] < 0.55  # not crushed by the outlier
    assert (viz.attribution_to_gray(-a) == 0).all()
    assert viz.attribution_to_gray(-a, polarity="abs")[10, 10] > 0.45
    assert (viz.attribution_to_gray(np.zeros((4, 4))) == 0).all()
    with pytest.raises(ValueError, match="polarity"):
        viz.attribution_to_gray(a, polarity="both")


def test_low_percentile_stretches_maps_without_zero_level():
    m = 0.45 + 0.1 * np.linspace(0, 1, 400).reshape(20, 20)  # a soft mask: all values near 0.5
    assert viz.attribution_to_gray(m).min() > 0.8  # without a stretch: almost flat
    g = viz.attribution_to_gray(m, low_percentile=1)
    assert g.min() == 0 and g.max() == 1 and 0.4 < g[10, 10] < 0.6


def test_overlay_and_colorize_ranges():
    img = np.full((4, 4, 3), 200, np.uint8)
    g = np.ones((4, 4), np.float32)
    o = viz.overlay(img, g)
    assert o.dtype == np.uint8 and o[0, 0].tolist() == [140, 255, 140]
    assert viz.colorize(g)[0, 0].tolist() == [0, 255, 0]


def test_errors(tmp_path, explanations):
    ig, grad, _ = explanations
    with pytest.raises(ValueError, match="gradient="):
        ig.plot("paper")
    with pytest.raises(ValueError, match="accepted suffixes"):
        ig.plot(path=tmp_path / "x.jpg")
    with pytest.raises(IndexError):
        viz.plot_overlay(ig, index=5)
    with pytest.raises(ValueError, match="same batch"):
        viz.plot_paper_figure(ig, grad[0])


def test_headless_and_backend_untouched(tmp_path, explanations):
    import matplotlib

    backend = matplotlib.get_backend()
    explanations[0].plot(path=tmp_path / "a.png")
    assert matplotlib.get_backend() == backend


def test_missing_matplotlib_names_pip(monkeypatch, explanations):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        explanations[0].plot()
