"""Evaluation: metrics on a fake tree, the CLI's JSON/PNG/markdown, run folders and release folders."""

import csv
import json

import numpy as np
import pytest
import torch
from fake_sipakmed import make_fake_sipakmed, write_fake_splits

import cervattn
from cervattn.checkpoint import load_model, save_best
from cervattn.cli import main
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.data import SIPaKMeD, eval_transform
from cervattn.evaluate import evaluate, evaluate_model

FIELDS, CELLS = 4, 4  # per class; fields 1-2 train, 3 val, 4 test




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A fake tree, its split file and a run folder holding an (untrained) 32 px model."""
    tmp = tmp_path_factory.mktemp("eval")
    root = make_fake_sipakmed(tmp / "data", fields_per_class=FIELDS, cells_per_field=CELLS, size=(40, 36))
    splits = write_fake_splits(tmp / "splits.csv", fields_per_class=FIELDS, cells_per_field=CELLS)
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet", pretrained_cfg_overlay={"input_size": (3, 32, 32)}).eval()
    with torch.no_grad():  # a biased head so that predictions vary across classes
        model.classifier.bias.copy_(torch.tensor([0.3, 0.0, 0.1, -0.2, 0.05]))
    save_best(tmp / "run", model, {"arch": "test_rcan_densenet", "epoch": 3, "metrics": {"accuracy": 0.5},
                                   "pretrained_cfg": {"input_size": [3, 32, 32]}})
    return root, splits, tmp / "run", model


def test_evaluate_metrics_are_consistent(setup):
    root, splits, _, model = setup
    ds = SIPaKMeD(root, split="val", splits=splits, transform=eval_transform(model))
    result = evaluate(model, ds, n_boot=200)
    r, y, pred = result.report, result.targets, result.preds
    assert r["n"] == len(ds) == 5 * CELLS and result.n_missing == 0
    assert r["accuracy"] == pytest.approx(np.mean(pred == y))
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == len(y) and (cm.sum(1) == np.bincount(y, minlength=5)).all()
    f1 = [r["per_class"][c]["f1"] for c in SIPAKMED_CLASSES]
    support = [r["per_class"][c]["support"] for c in SIPAKMED_CLASSES]
    assert r["weighted_f1"] == pytest.approx(np.dot(f1, support) / sum(support))  # the paper's Eq. 1
    assert r["ci"]["accuracy"][0] <= r["accuracy"] <= r["ci"]["accuracy"][1]
    assert np.allclose(result.probs.sum(1), 1.0, atol=1e-5)
    assert result.field_level["n_fields"] == 5  # one val field per class
    assert len(result.paths) == len(y) and result.paths[0].endswith(".bmp")
    # untransformed datasets get the model's eval transform
    plain = evaluate(model, SIPaKMeD(root, split="val", splits=splits), n_boot=0)
    np.testing.assert_allclose(plain.probs, result.probs, atol=1e-6)


def test_cli_writes_json_png_table_and_predictions(setup, tmp_path, capsys):
    root, splits, run, _ = setup
    out = tmp_path / "report"
    argv = ["evaluate", str(run), "--data", str(root), "--split-file", str(splits), "--split", "val", "--n-boot", "100",
            "--json", str(tmp_path / "m.json"), "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| Accuracy |" in captured.out and "20 images, 0 listed but absent" in captured.out
    assert "Research use only" in captured.err
    data = json.loads((tmp_path / "m.json").read_text())
    assert {"model", "source", "checkpoint", "data_root", "kind", "split", "n_images", "n_missing", "metrics",
            "field_level", "img_size", "cervattn_version", "time", "notice"} <= set(data)
    assert data["model"] == "test_rcan_densenet" and data["source"] == "checkpoint" and data["trained_epoch"] == 3
    assert data["split"] == "val" and data["n_images"] == 20 and data["img_size"] == [32, 32]
    assert {"accuracy", "weighted_f1", "macro_f1", "per_class", "confusion_matrix", "ci"} <= set(data["metrics"])
    assert data["metrics"]["ci"]["n_boot"] == 100 and data["field_level"]["n_fields"] == 5
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["metrics"] == data["metrics"]
    assert "| Weighted F1 |" in (out / "table.md").read_text()
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and set(rows[0]) >= {"image", "label", "prediction", "p_Dyskeratotic"}


def test_release_folder_gives_the_same_result_as_the_run(setup, tmp_path):
    from timm.models import save_for_hf

    root, splits, run, _ = setup
    loaded = load_model(run)
    save_for_hf(loaded.model, str(tmp_path / "release"), safe_serialization=True)
    assert sorted(p.name for p in (tmp_path / "release").iterdir()) == ["config.json", "model.safetensors"]
    a = evaluate_model(run, root, split="val", split_file=splits, n_boot=0)
    b = evaluate_model(tmp_path / "release", root, split="val", split_file=splits, n_boot=0)
    assert b.meta["source"] == "release" and a.meta["source"] == "checkpoint"
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
    assert b.report["class_names"] == list(SIPAKMED_CLASSES)


def test_without_split_file_every_image_and_missing_rows_reported(setup, tmp_path):
    root, _, run, _ = setup
    every = evaluate_model(run, root, split="all", split_file=None, n_boot=0)
    assert every.report["n"] == 5 * FIELDS * CELLS and every.meta["split_file"] is None
    fields = evaluate_model(run, root, split="all", split_file=None, kind="multi", n_boot=0)
    assert fields.report["n"] == 5 * FIELDS and fields.field_level is None
    # a split file listing a fifth field per class, absent from the tree (fake_split_of(5) == "train")
    longer = write_fake_splits(tmp_path / "longer.csv", fields_per_class=FIELDS + 1, cells_per_field=CELLS)
    with pytest.warns(UserWarning, match="were not found"):
        train = evaluate_model(run, root, split="train", split_file=longer, n_boot=0)
    assert train.n_missing == 5 * CELLS and train.to_dict()["n_missing"] == 5 * CELLS
    assert train.report["n"] == 5 * 2 * CELLS
    with pytest.raises(ValueError, match="split='all'"):
        evaluate_model(run, root, split="val", split_file=None)
