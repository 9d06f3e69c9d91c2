"""Prediction: records from files, folders and PIL images, the table and JSON of ``cervattn predict``."""

import json

import numpy as np
import pytest
import torch
from fake_sipakmed import make_fake_sipakmed

import cervattn
from cervattn.checkpoint import save_best
from cervattn.cli import main
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.data import load_rgb
from cervattn.predict import expand_images, format_predictions, predict


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    root = make_fake_sipakmed(tmp / "data", exts=(".png", ".jpg", ".bmp"), fields_per_class=1, cells_per_field=2,
                              multi=False, size=(40, 36))
    torch.manual_seed(0)
    model = cervattn.create_model("test_rcan_densenet", pretrained_cfg_overlay={"input_size": (3, 32, 32)}).eval()
    save_best(tmp / "run", model, {"arch": "test_rcan_densenet", "pretrained_cfg": {"input_size": [3, 32, 32]}})
    return root, tmp / "run", model


def test_predict_folders_files_and_pil_images(setup):
    root, _, model = setup
    files = expand_images([root])
    assert len(files) == 10 and {f.suffix for f in files} == {".png", ".jpg", ".bmp"}
    preds = predict(model, [root], batch_size=3)
    assert [p.image for p in preds] == [str(f) for f in files]
    for p in preds:
        assert list(p.probabilities) == list(SIPAKMED_CLASSES)
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.label == max(p.probabilities, key=p.probabilities.get) == SIPAKMED_CLASSES[p.index]
        assert p.probability == p.probabilities[p.label]
    one_by_one = predict(model, files[:4], batch_size=1)
    pil = predict(model, [load_rgb(f) for f in files[:4]], batch_size=4)
    for a, b, c in zip(preds[:4], one_by_one, pil):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
        np.testing.assert_allclose(list(a.probabilities.values()), list(c.probabilities.values()), atol=1e-5)
    assert pil[0].image == "<image 0>"
    assert model.training is False
    with pytest.raises(FileNotFoundError, match="does not exist"):
        expand_images([root / "nothing.png"])


def test_cli_table_json_and_top_k(setup, capsys):
    root, run, _ = setup
    folder = root / "im_Parabasal"
    assert main(["predict", str(folder), "--model", str(run), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["image", "label", "p"] and "Superficial-Intermediate" in lines[0]
    assert len(lines) == 3 and "Research use only" in captured.err
    start = lines[0].index("label")  # aligned columns: every row's label starts under the header's
    assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[1:])
    assert {line[start:].split()[0] for line in lines[1:]} <= set(SIPAKMED_CLASSES)
    assert main(["predict", str(folder), "--model", str(run), "--json", "--top-k", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "test_rcan_densenet" and "Research use only" in data["notice"]
    rec = data["predictions"][0]
    assert len(rec["top_k"]) == 2 and rec["top_k"][0]["label"] == rec["label"]
    assert rec["top_k"][0]["probability"] >= rec["top_k"][1]["probability"]
    assert main(["predict", str(root / "missing.bmp"), "--model", str(run)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert format_predictions([]) == ""
