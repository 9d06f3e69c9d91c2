"""``cervattn explain``: figures and predictions for files and folders, and its errors."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

import cervattn
from cervattn.checkpoint import save_best
from cervattn.cli import main

SAMPLES = REPO / "examples" / "images"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet", pretrained_cfg_overlay={"input_size": (3, 48, 48)}).eval()
    run = tmp_path_factory.mktemp("explain") / "run"
    save_best(run, model, {"arch": "test_rcan_densenet", "pretrained_cfg": {"input_size": [3, 48, 48]}})
    return run


def test_explain_folder_writes_figures_and_predictions(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", str(SAMPLES), "--model", str(run_dir), "--out", str(out), "--n-steps", "4",
                 "--no-progress"]) == 0
    figures = sorted(out.glob("*.png"))
    assert len(figures) == len(list(SAMPLES.glob("*.webp"))) == 5
    pixels = np.asarray(Image.open(figures[0]).convert("RGB"))
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a real picture
    records = json.loads((out / "predictions.json").read_text())
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 5 and {r["predicted"] for r in rows} <= set(cervattn.SIPAKMED_CLASSES)
    assert "research use only" in json.dumps(records).lower() or "Research use only" in capsys.readouterr().err


def test_explain_target_by_name_and_errors(run_dir, tmp_path, capsys):
    image = str(SAMPLES / "Parabasal_001_01.webp")
    assert main(["explain", image, "--model", str(run_dir), "--out", str(tmp_path), "--method", "saliency",
                 "--target", "Parabasal", "--no-progress"]) == 0
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert rows[0]["target"] in ("Parabasal", "3")
    assert main(["explain", image, "--model", str(run_dir), "--out", str(tmp_path), "--target", "Cancer",
                 "--no-progress"]) == 1
    assert "Parabasal" in capsys.readouterr().err  # the error lists the accepted label names
    assert main(["explain", str(tmp_path / "missing.png"), "--model", str(run_dir), "--out", str(tmp_path)]) == 1
