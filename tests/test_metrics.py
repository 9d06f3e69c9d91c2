"""Metrics against values computed by hand (scikit-learn is not a dependency)."""

import doctest

import numpy as np
import pytest

from cervattn.constants import SIPAKMED_CLASSES
from cervattn.metrics import (
    accuracy,
    add_bootstrap_ci,
    bootstrap_ci,
    classification_report,
    confusion_matrix,
    confusion_matrix_figure,
    field_level_accuracy,
    macro_f1,
    markdown_table,
    paired_comparison,
    weighted_f1,
)

# Confusion matrix [[2, 1, 0], [0, 2, 1], [0, 0, 4]] (rows true):
# precision 2/2, 2/3, 4/5; recall 2/3, 2/3, 4/4; F1 0.8, 2/3, 8/9; support 3, 3, 4.
Y_TRUE = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
F1 = [0.8, 2 / 3, 8 / 9]


def test_report_matches_hand_computation():
    r = classification_report(Y_TRUE, Y_PRED, num_classes=3, class_names=["a", "b", "c"])
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [0, 0, 4]]
    assert r["n"] == 10 and r["accuracy"] == pytest.approx(0.8)
    assert r["weighted_f1"] == pytest.approx((3 * 0.8 + 3 * 2 / 3 + 4 * 8 / 9) / 10)  # Eq. 1
    assert r["macro_f1"] == pytest.approx(sum(F1) / 3)
    assert r["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert r["per_class"]["c"]["precision"] == pytest.approx(0.8)
    assert r["weighted_recall"] == pytest.approx(r["accuracy"])
    assert weighted_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(r["weighted_f1"])
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(r["macro_f1"])
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.8)


def test_five_classes_scores_and_zero_division():
    y_true = np.array([0, 0, 1, 1, 2])
    scores = np.eye(5)[[0, 1, 1, 1, 0]] * 3.0 - 1.0  # logits: argmax is taken
    r = classification_report(y_true, scores)
    assert list(r["per_class"]) == list(SIPAKMED_CLASSES)
    assert r["confusion_matrix"][2] == [1, 0, 0, 0, 0]
    assert r["per_class"]["Metaplastic"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["per_class"]["Parabasal"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Dyskeratotic: precision 1/2, recall 1/2; Koilocytotic: precision 2/3, recall 1.
    assert r["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0) / 5)
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8) / 5)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="y_true has 2 samples but y_pred has 3"):
        confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="class index 7, outside 0..4"):
        classification_report([0, 7], [0, 1])
    with pytest.raises(ValueError, match="class_names has 5 names but num_classes=3"):
        classification_report([0], [0], num_classes=3)


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.8, y_true, rng.integers(0, 5, 200))
    low, high = bootstrap_ci(y_true, y_pred, accuracy, n_boot=200, seed=1)
    assert low < accuracy(y_true, y_pred) < high and high - low < 0.2
    assert bootstrap_ci(y_true, y_pred, accuracy, n_boot=200, seed=1) == (low, high)
    assert bootstrap_ci(y_true, y_pred, accuracy, n_boot=200, seed=2) != (low, high)
    report = add_bootstrap_ci(classification_report(y_true, y_pred), y_true, y_pred, n_boot=200, seed=1)
    assert report["ci"]["accuracy"] == pytest.approx([low, high])
    wf1 = bootstrap_ci(y_true, y_pred, weighted_f1, n_boot=200, seed=1)
    assert report["ci"]["weighted_f1"] == pytest.approx(list(wf1))
    for name, (lo, hi) in report["ci"]["per_class_f1"].items():
        assert lo <= report["per_class"][name]["f1"] <= hi
    with pytest.raises(ValueError, match="alpha=1.5"):
        bootstrap_ci(y_true, y_pred, accuracy, alpha=1.5)


def test_paired_comparison_hand_example():
    # A right on 0-5, B right on 0-2 and 6: A alone 3 cells, B alone 1; exact McNemar on 4 discordant
    # cells: p = 2 * P(X <= 1 | Binomial(4, 1/2)) = 2 * 5/16.
    y = [0, 1, 2, 3, 4, 0, 1, 2]
    a = [0, 1, 2, 3, 4, 0, 0, 0]
    b = [0, 1, 2, 0, 0, 1, 1, 0]
    out = paired_comparison(y, a, b, n_boot=300)
    assert (out["n"], out["only_a"], out["only_b"]) == (8, 3, 1)
    assert out["accuracy_a"] == 6 / 8 and out["accuracy_b"] == 4 / 8
    assert out["difference"] == pytest.approx(2 / 8)
    assert out["p_value"] == pytest.approx(10 / 16)
    low, high = out["difference_ci"]
    assert low <= out["difference"] <= high
    # Swapping the models mirrors everything; scores work like class indices.
    swapped = paired_comparison(y, np.eye(5)[b], a, n_boot=300)
    assert (swapped["only_a"], swapped["only_b"], swapped["p_value"]) == (1, 3, out["p_value"])
    assert swapped["difference"] == pytest.approx(-out["difference"])


def test_paired_comparison_extremes_and_errors():
    y = np.zeros(2000, dtype=int)
    same = paired_comparison(y, y, y, n_boot=50)
    assert same["p_value"] == 1.0 and same["difference_ci"] == (0.0, 0.0)
    # 1,100 discordant cells (2.0**1100 overflows a float): computed exactly, tiny but not zero.
    a = np.r_[np.ones(50, dtype=int), np.zeros(1950, dtype=int)]
    b = np.r_[np.zeros(50, dtype=int), np.ones(1050, dtype=int), np.zeros(900, dtype=int)]
    out = paired_comparison(y, a, b, n_boot=50)
    assert (out["only_a"], out["only_b"]) == (1050, 50) and 0 < out["p_value"] < 1e-200
    with pytest.raises(ValueError, match="one entry per sample; got 3, 3 and 2"):
        paired_comparison([0, 1, 2], [0, 1, 2], [0, 1])


def test_field_level_accuracy_hand_example():
    # Field 001 exists in both classes: the groups are (class, field).
    fields = ["001", "001", "001", "001", "001", "002"]
    labels = [0, 0, 0, 1, 1, 1]
    probs = [[0.6, 0.4], [0.3, 0.7], [0.7, 0.3], [0.6, 0.4], [0.45, 0.55], [0.2, 0.8]]
    # means: class 0/001 -> [0.533, 0.467] right; class 1/001 -> [0.525, 0.475] wrong; 1/002 right.
    assert field_level_accuracy(fields, labels, probs) == {"accuracy": 2 / 3, "n_fields": 3, "n_correct": 2}
    # Hard votes: 0/001 has votes 0,1,0 -> 0 right; 1/001 has 0,1 (tie -> 0) wrong; 1/002 right.
    preds = [0, 1, 0, 0, 1, 1]
    assert field_level_accuracy(fields, labels, preds)["n_correct"] == 2
    with pytest.raises(ValueError, match="looks like logits"):
        field_level_accuracy(fields, labels, np.log(np.asarray(probs)))


def test_markdown_table_with_cis():
    r = add_bootstrap_ci(classification_report(Y_TRUE, Y_PRED, 3, ["a", "b", "c"]), Y_TRUE, Y_PRED, n_boot=50)
    plain = classification_report(Y_TRUE, [0] * 10, 3, ["a", "b", "c"])
    table = markdown_table({"model_x": r, "model_y": plain}, bold_best=True)
    lines = table.splitlines()
    assert lines[0] == "| Metric | model_x | model_y |" and len(lines) == 2 + 3 + 3
    assert lines[2].startswith("| Accuracy | **80.0 [") and lines[2].endswith("| 30.0 |")
    assert lines[5].startswith("| F1 a | **80.0")


def test_confusion_matrix_figure_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    report = classification_report(Y_TRUE, Y_PRED, 3, ["a", "b", "c"])
    path = confusion_matrix_figure(report, ["a", "b", "c"], tmp_path / "out" / "cm.png", normalize=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="2 names for a 3x3 matrix"):
        confusion_matrix_figure(report, ["a", "b"], tmp_path / "x.png")


def test_docstring_examples_run():
    import cervattn.metrics

    result = doctest.testmod(cervattn.metrics)
    assert result.attempted >= 4 and result.failed == 0
