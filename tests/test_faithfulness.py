"""cervattn.faithfulness: deletion / insertion, model randomisation, attribution on cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cervattn
from cervattn import faithfulness as fa
from cervattn.explanations import Explanation, explain


class _SquareModel(nn.Module):
    """Class 0's logit is the mean of channel 0 over a known square: the true explanation."""

    def __init__(self, size: int = 32):
        super().__init__()
        w = torch.zeros(1, 1, size, size)
        w[..., 8:20, 4:16] = 1.0
        self.register_buffer("mask", w)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        s = (x[:, :1] * self.mask).sum((1, 2, 3)) / self.mask.sum() * self.scale
        return torch.stack([s, -s, torch.zeros_like(s)], dim=1)


def _square_case():
    model = _SquareModel()
    x = torch.full((2, 3, 32, 32), 2.0)  # bright everywhere; the 'mean' replacement is 0
    oracle = np.broadcast_to(model.mask[0, 0].numpy(), (2, 32, 32)).copy()
    return model, x, oracle


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_oracle_map_beats_random(kind):
    model, x, oracle = _square_case()
    c = fa.perturbation_curve(model, x, oracle, [0, 0], kind=kind, n_steps=16, replacement="mean",
                              random_orders=2)
    assert c.scores.shape == (2, 17) and c.fractions[0] == 0 and c.fractions[-1] == 1
    p_full = torch.softmax(model(x), 1)[0, 0].item()
    p_empty = torch.softmax(model(torch.zeros_like(x)), 1)[0, 0].item()
    start, end = (p_full, p_empty) if kind == "deletion" else (p_empty, p_full)
    np.testing.assert_allclose(c.scores[:, 0], start, rtol=1e-5)
    np.testing.assert_allclose(c.scores[:, -1], end, rtol=1e-5)
    assert c.better_than_random.all()
    if kind == "deletion":
        assert (c.auc < c.random_auc - 0.1).all()
    else:
        assert (c.auc > c.random_auc + 0.1).all()
    # The reversed (worst) order is worse than random.
    worst = fa.perturbation_curve(model, x, -oracle, [0, 0], kind=kind, replacement="mean", random_orders=0)
    assert worst.random_auc is None
    assert ((worst.auc > c.random_auc) if kind == "deletion" else (worst.auc < c.random_auc)).all()


def test_replacements_and_errors():
    model, x, oracle = _square_case()
    for repl in ("blurred", "black", "white", torch.zeros(3, 32, 32)):
        c = fa.perturbation_curve(model, x, oracle, [0, 0], replacement=repl, n_steps=4, random_orders=0)
        assert np.isfinite(c.auc).all()
    assert c.replacement == "tensor"
    with pytest.raises(ValueError, match="do not match"):
        fa.perturbation_curve(model, x, oracle[:, :16], [0, 0])
    with pytest.raises(ValueError, match="deletion"):
        fa.perturbation_curve(model, x, oracle, [0, 0], kind="both")


def test_curves_from_explanation_keep_model_state():
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet")
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    e = explain(model, torch.randn(2, 3, 32, 32), n_steps=4)
    d = fa.deletion_curve(model, e, n_steps=4)
    i = fa.insertion_curve(model, e, n_steps=4, output="logit")
    assert d.auc.shape == i.auc.shape == (2,) and d.random_auc.shape == (2,)
    assert ((d.scores >= 0) & (d.scores <= 1)).all()
    assert model.training and [p.requires_grad for p in model.parameters()] == flags


def test_ranking_map():
    e = explain(cervattn.create_model("test_rcan_densenet"), torch.randn(1, 3, 32, 32), method="saliency")
    np.testing.assert_allclose(fa.ranking_map(e), np.abs(e.attributions).sum(1))
    np.testing.assert_allclose(fa.ranking_map(e, "signed"), e.attributions.sum(1))
    with pytest.raises(ValueError, match="rank_by"):
        fa.ranking_map(e, "max")


def test_spearman():
    a = np.arange(10.0)
    assert fa.spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert fa.spearman(a, -a) == pytest.approx(-1.0)
    assert fa.spearman(a, np.ones(10)) == 0.0
    # Ties get average ranks: [1, 1, 2] vs [1, 2, 3] -> ranks [0.5, 0.5, 2] vs [0, 1, 2].
    assert fa.spearman(np.array([1, 1, 2]), np.array([1, 2, 3])) == pytest.approx(np.sqrt(3) / 2)


@pytest.mark.parametrize("mode", ["cascading", "full"])
def test_randomization_check(mode):
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    rng_state = torch.get_rng_state()
    r = fa.randomization_check(model, x, method="saliency", mode=mode, n_blocks=3)
    steps = 3 if mode == "cascading" else 1
    assert r.spearman.shape == r.spearman_abs.shape == (steps, 2) and len(r.steps) == steps
    assert r.fraction[-1] == 1.0 and np.all(np.diff(r.fraction) > 0)
    assert np.all(np.abs(r.spearman) <= 1)
    assert np.all(r.spearman_abs[-1] < 0.9)  # a fully random model explains differently
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # caller's model untouched
    assert torch.equal(torch.get_rng_state(), rng_state)
    with pytest.raises(ValueError, match="mode"):
        fa.randomization_check(model, torch.randn(1, 3, 32, 32), mode="layerwise")


def _cell_explanation(attr_on_cell: float, attr_on_background: float) -> Explanation:
    img = np.full((1, 40, 40, 3), 235, np.uint8)  # bright slide
    img[0, 10:30, 10:30] = (90, 60, 120)  # one dark cell, 400 of 1600 pixels
    attr = np.full((1, 3, 40, 40), attr_on_background, np.float32)
    attr[0, :, 10:30, 10:30] = attr_on_cell
    return Explanation(method="integrated_gradients", attributions=attr, image=img,
                       inputs=np.zeros((1, 3, 40, 40), np.float32), target=np.array([0]),
                       probabilities=np.full((1, 5), 0.2, np.float32))


def test_cell_attribution_share():
    on_cells = fa.cell_attribution_share(_cell_explanation(1.0, 0.0))
    assert on_cells.share[0] == pytest.approx(1.0)
    assert on_cells.cell_fraction[0] == pytest.approx(0.25)
    assert on_cells.enrichment[0] == pytest.approx(4.0)
    assert 60 < on_cells.threshold[0] < 235
    uniform = fa.cell_attribution_share(_cell_explanation(1.0, 1.0))
    assert uniform.share[0] == pytest.approx(0.25)
    fixed = fa.cell_attribution_share(_cell_explanation(0.0, 1.0), threshold=200)
    assert fixed.share[0] == pytest.approx(0.0) and fixed.cell_mask.sum() == 400
    negative = fa.cell_attribution_share(_cell_explanation(-1.0, 0.0), polarity="abs")
    assert negative.share[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        fa.cell_attribution_share(_cell_explanation(1, 0), threshold=300)


def test_otsu_threshold_separates_two_levels():
    gray = np.concatenate([np.full(300, 50), np.full(700, 220)]).astype(np.uint8)
    assert 50 <= fa.otsu_threshold(gray) < 220


def test_label_regions_4_connected():
    mask = np.zeros((6, 7), bool)
    mask[0:2, 0:2] = True  # region A
    mask[2, 2] = True  # touches A only diagonally: its own region
    mask[4:6, 1:7] = True  # a bar
    mask[3, 6] = True  # joined to the bar
    labels, n = fa.label_regions(mask)
    assert n == 3 and labels.max() == 3 and (labels > 0).sum() == mask.sum()
    assert len(np.unique(labels[0:2, 0:2])) == 1 and labels[2, 2] != labels[0, 0]
    assert labels[3, 6] == labels[5, 1]
    snake = np.zeros((9, 9), bool)  # one long winding region (many propagation steps)
    snake[::2] = True
    snake[1::4, -1] = snake[3::4, 0] = True
    assert fa.label_regions(snake)[1] == 1
    with pytest.raises(ValueError, match="2-D"):
        fa.label_regions(np.zeros((2, 3, 4), bool))


def _field_explanation(weights):
    """A slide with four dark 8x8 cells; attribution weight per cell as given."""
    img = np.full((1, 40, 40, 3), 235, np.uint8)
    attr = np.zeros((1, 3, 40, 40), np.float32)
    for (r, c), wgt in zip([(2, 2), (2, 25), (25, 2), (25, 25)], weights):
        img[0, r : r + 8, c : c + 8] = (90, 60, 120)
        attr[0, :, r : r + 8, c : c + 8] = wgt
    img[0, 38, 38] = (90, 60, 120)  # one dark pixel of debris, below min_area
    return Explanation(method="integrated_gradients", attributions=attr, image=img,
                       inputs=np.zeros((1, 3, 40, 40), np.float32), target=np.array([0]),
                       probabilities=np.full((1, 5), 0.2, np.float32))


def test_cell_concentration_counts_cells_holding_the_mass():
    focused = fa.cell_concentration(_field_explanation([10, 1, 1, 0]))
    assert focused.n_regions[0] == 4  # the debris pixel is dropped
    assert focused.regions_for_mass[0] == 1 and focused.top_region_share[0] == pytest.approx(10 / 12)
    assert focused.fraction_for_mass[0] == pytest.approx(0.25)
    spread = fa.cell_concentration(_field_explanation([1, 1, 1, 1]))
    assert spread.regions_for_mass[0] == 4 and spread.top_region_share[0] == pytest.approx(0.25)
    assert fa.cell_concentration(_field_explanation([1, 1, 1, 1]), mass=0.5).regions_for_mass[0] == 2
    empty = fa.cell_concentration(_field_explanation([0, 0, 0, 0]))
    assert np.isnan(empty.regions_for_mass[0]) and empty.n_regions[0] == 4
    assert set(np.unique(focused.labels)) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="mass"):
        fa.cell_concentration(_field_explanation([1, 1, 1, 1]), mass=1.5)
    with pytest.raises(ValueError, match="min_area"):
        fa.cell_concentration(_field_explanation([1, 1, 1, 1]), min_area=-0.1)
