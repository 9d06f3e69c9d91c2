"""Every script in examples/ runs end to end on tiny data (smoke tests, as a user would call them)."""

import subprocess
import sys

import numpy as np
from conftest import REPO
from fake_sipakmed import make_fake_sipakmed, write_fake_splits
from PIL import Image

EXAMPLES = REPO / "examples"


def run_example(script: str, *args: str, cwd=REPO) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_example_is_tested():
    tested = {"feature_extractor.py", "finetune_imagefolder.py", "reproduce_table2.py", "load_offline.py",
              "explain_folder.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested


def test_feature_extractor():
    out = run_example("feature_extractor.py", "--model", "test_rcan_densenet", "--img-size", "64")
    assert "features.norm5" in out and "embedding (1, 32)" in out


def test_finetune_imagefolder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls, colour in (("normal", 200), ("abnormal", 60)):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = np.clip(colour + rng.integers(-10, 10, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    out = run_example("finetune_imagefolder.py", "--train", str(tmp_path / "train"), "--val",
                      str(tmp_path / "val"), "--model", "test_ran_resnet", "--epochs", "1", "--img-size", "32",
                      "--out", str(tmp_path / "w.safetensors"))
    assert "best val accuracy" in out and (tmp_path / "w.safetensors").is_file()


def test_reproduce_table2(tmp_path):
    data = make_fake_sipakmed(tmp_path / "data", fields_per_class=4)
    splits = write_fake_splits(tmp_path / "splits.csv")
    out = run_example("reproduce_table2.py", "--data", str(data), "--out", str(tmp_path / "runs"),
                      "--models", "test_rcan_densenet", "--epochs", "1", "--img-size", "32",
                      "--split-file", str(splits))
    assert "| Accuracy" in out or "accuracy" in out.lower()
    assert (tmp_path / "runs" / "table2.md").is_file()


def test_explain_folder(tmp_path):
    import torch

    import cervattn
    from cervattn.checkpoint import save_best

    model = cervattn.create_model("test_ran_resnet", pretrained_cfg_overlay={"input_size": (3, 48, 48)}).eval()
    save_best(tmp_path / "run", model, {"arch": "test_ran_resnet", "pretrained_cfg": {"input_size": [3, 48, 48]}})
    torch.set_num_threads(1)
    out = run_example("explain_folder.py", str(EXAMPLES / "images"), "--model", str(tmp_path / "run"), "--out",
                      str(tmp_path / "out"), "--n-steps", "4")
    assert out.count("->") == 5 and len(list((tmp_path / "out").glob("*.png"))) == 5
