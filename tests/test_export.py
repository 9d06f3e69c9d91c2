"""Release folders: training checkpoint -> Hub-layout folder (timm config, safetensors, model card),
the `cervattn export` / `cervattn publish` commands, and publish's refusal of pickle. No network."""

import argparse
import json
import os

import huggingface_hub
import numpy as np
import pytest
import timm
import torch
from conftest import perturbed_model
from safetensors.torch import load_file, save_file

import cervattn
from cervattn.cli import main
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.export import export, plan_upload, publish, read_training_checkpoint
from cervattn.metrics import add_bootstrap_ci, classification_report, field_level_accuracy
from cervattn.releases import Release

ARCH = "test_rcan_densenet"
NAME = f"{ARCH}.sipakmed_cells"
X = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))


def trained(seed=0, arch=ARCH, **kwargs):
    return perturbed_model(arch, seed, **kwargs)


def save_checkpoint(path, model, **extra):
    entry = {"model": model.state_dict(), "arch": ARCH, "epoch": 12,
             "args": {"lr": 0.01, "epochs": 30, "batch_size": 32, "img_size": 64, "data_dir": "/home/alice/sipakmed"},
             "metrics": {"val_weighted_f1": 0.91}, "compute": {"device": "1x CPU", "hours": 0.1}}
    entry.update(extra)
    torch.save(entry, path)
    return path


def evaluation_json(path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    pred = np.where(rng.random(200) < 0.8, y, rng.integers(0, 5, 200))
    report = add_bootstrap_ci(classification_report(y, pred), y, pred, n_boot=200)
    fields = [str(i // 4) for i in range(200)]
    report["field_level_accuracy"] = field_level_accuracy(fields, y, pred, num_classes=5)
    report["split"] = "test"
    path.write_text(json.dumps(report, indent=1))
    return path, report


def logits(model):
    with torch.no_grad():
        return model.eval()(X)


@pytest.fixture
def ckpt(tmp_path):
    model = trained()
    return model, save_checkpoint(tmp_path / "best.pt", model)


# --------------------------------------------------------------------------------------------------
# export


def test_fp32_export_round_trip_is_bit_identical(ckpt, tmp_path):
    model, path = ckpt
    eval_path, _ = evaluation_json(tmp_path / "eval.json")
    result = export(path, tmp_path / "hub" / NAME, eval_json=eval_path, split="grouped by field image: test")
    folder = result.folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "evaluation.json", "model.safetensors"]
    assert json.loads((folder / "evaluation.json").read_text()) == json.loads(eval_path.read_text())
    saved = load_file(str(folder / "model.safetensors"))
    assert saved.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert saved[key].dtype == value.dtype and torch.equal(saved[key], value), key
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert torch.equal(logits(loaded), logits(model))
    assert torch.equal(logits(cervattn.create_model(ARCH, checkpoint_path=path)), logits(model))

    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == ARCH and config["num_classes"] == 5
    assert config["label_names"] == list(SIPAKMED_CLASSES)
    pcfg = config["pretrained_cfg"]
    assert pcfg["input_size"] == [3, 64, 64] and pcfg["crop_pct"] == 1.0 and pcfg["tag"] == "sipakmed_cells"
    assert pcfg["description"] == "Trained on SIPaKMeD (grouped by field image: test)."
    assert "hf_hub_id" not in pcfg and "file" not in pcfg
    assert result.sha256 == {f: cervattn.hub.sha256_file(folder / f) for f in result.sha256}


def test_export_is_deterministic(ckpt, tmp_path):
    _, path = ckpt
    first = export(path, tmp_path / "a" / NAME).sha256
    assert export(path, tmp_path / "b" / NAME).sha256 == first


def test_fp16_export_equals_the_model_rounded_to_fp16(ckpt, tmp_path):
    model, path = ckpt
    result = export(path, tmp_path / NAME, dtype="fp16")
    assert result.dtype == "fp16"
    loaded = timm.create_model(f"local-dir:{result.folder}", pretrained=True)
    for key, value in model.state_dict().items():
        got = loaded.state_dict()[key]
        want = value.half().float() if value.is_floating_point() else value
        assert got.dtype == value.dtype and torch.equal(got, want), key
    assert (result.folder / "model.safetensors").stat().st_size < 0.6 * export(path, tmp_path / "f32").sizes[
        "model.safetensors"]


def test_fp16_export_refuses_values_out_of_range(tmp_path):
    model = trained()
    with torch.no_grad():
        model.classifier.weight[0, 0] = 1e6
    path = save_checkpoint(tmp_path / "big.pt", model)
    with pytest.raises(ValueError, match="classifier.weight.*fp32"):
        export(path, tmp_path / NAME, dtype="fp16")


def test_model_card_reports_the_evaluation(ckpt, tmp_path):
    _, path = ckpt
    eval_path, report = evaluation_json(tmp_path / "eval.json")
    card = (export(path, tmp_path / NAME, eval_json=eval_path, split="grouped split").folder / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\nlibrary_name: timm\n")
    assert "Research use only, not for clinical diagnosis." in card
    acc, (low, high) = report["accuracy"], report["ci"]["accuracy"]
    assert f"| Accuracy | {acc * 100:.1f} [{low * 100:.1f}, {high * 100:.1f}] |" in card
    f1 = report["per_class"]["Parabasal"]["f1"]
    f1_low, f1_high = report["ci"]["per_class_f1"]["Parabasal"]
    assert f"{f1 * 100:.1f} [{f1_low * 100:.1f}, {f1_high * 100:.1f}]" in card
    assert "95 % percentile-bootstrap" in card and "200 bootstrap resamples" in card
    assert "Field-level accuracy" in card and f"of {report['field_level_accuracy']['n_fields']} field images" in card
    first_row = " | ".join(str(v) for v in report["confusion_matrix"][0])
    assert f"| Dyskeratotic | {first_row} |" in card
    for needed in ("arXiv:2106.00557", "Plissiti", "ICIP", "## Limitations", "## Intended use", "## Licence",
                   "Weights from epoch 12", "| lr | 0.01 |", "Compute: device: 1x CPU, hours: 0.1",
                   f'cervattn.create_model("{NAME}", pretrained=True)', f"hf-hub:cervattn/{NAME}"):
        assert needed in card, needed
    assert "/home/alice" not in card and "(local path)" in card


def test_card_without_evaluation_shows_training_metrics(ckpt, tmp_path):
    _, path = ckpt
    card = (export(path, tmp_path / NAME).folder / "README.md").read_text()
    assert "No evaluation was attached" in card and "| val_weighted_f1 | 0.91 |" in card
    assert "Split: not recorded" in card


def test_safetensors_checkpoint_with_sidecar(tmp_path):
    model = trained(seed=4)
    save_file(model.state_dict(), str(tmp_path / "best.safetensors"))
    (tmp_path / "best.json").write_text(json.dumps({"arch": ARCH, "epoch": 3, "split": "fold 1"}))
    ckpt = read_training_checkpoint(tmp_path / "best.safetensors")
    assert ckpt.arch == ARCH and ckpt.epoch == 3 and ckpt.meta["split"] == "fold 1"
    result = export(tmp_path / "best.safetensors", tmp_path / NAME)
    assert result.split == "fold 1"
    assert torch.equal(logits(timm.create_model(f"local-dir:{result.folder}", pretrained=True)), logits(model))


def test_checkpoint_errors_say_how_to_fix(tmp_path):
    model = trained()
    nameless = tmp_path / "nameless.pt"
    torch.save({"model": model.state_dict()}, nameless)
    with pytest.raises(ValueError, match="--arch"):
        export(nameless, tmp_path / "a")
    assert export(nameless, tmp_path / NAME, arch=ARCH).name == NAME
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": model.state_dict(), "arch": ARCH, "args": argparse.Namespace(lr=0.1)}, pickled)
    with pytest.raises(ValueError, match="unpickling"):
        export(pickled, tmp_path / "b")
    wrong = save_checkpoint(tmp_path / "wrong.pt", model, arch="test_ran_densenet")
    with pytest.raises(ValueError, match="do not fit test_ran_densenet"):
        export(wrong, tmp_path / "c")
    with pytest.raises(ValueError, match="dtype='bf16'"):
        export(save_checkpoint(tmp_path / "ok.pt", model), tmp_path / "d", dtype="bf16")
    with pytest.raises(ValueError, match="tag='SIPaKMeD cells'"):
        export(tmp_path / "ok.pt", tmp_path / "e", tag="SIPaKMeD cells")


def test_three_class_checkpoint_needs_and_keeps_label_names(tmp_path):
    model = trained(num_classes=3)
    path = save_checkpoint(tmp_path / "three.pt", model)
    with pytest.raises(ValueError, match="label_names"):
        export(path, tmp_path / "a")
    save_checkpoint(path, model, label_names=["normal", "abnormal", "benign"])
    result = export(path, tmp_path / f"{ARCH}.sipakmed_3class", tag="sipakmed_3class")
    config = json.loads((result.folder / "config.json").read_text())
    assert config["num_classes"] == 3 and config["label_names"] == ["normal", "abnormal", "benign"]
    assert result.cfg["num_classes"] == 3
    assert torch.equal(logits(timm.create_model(f"local-dir:{result.folder}", pretrained=True)), logits(model))


def test_cli_export_prints_hashes_and_a_pasteable_entry(ckpt, tmp_path, capsys):
    _, path = ckpt
    folder = tmp_path / NAME
    assert main(["export", str(path), "--out", str(folder), "--fp32", "--split", "grouped"]) == 0
    out = capsys.readouterr().out
    digest = cervattn.hub.sha256_file(folder / "model.safetensors")
    assert f"{digest}  model.safetensors" in out
    entry = out.split("best weights of an architecture first):\n\n", 1)[1].split("\n\n", 1)[0]
    release = eval(entry.strip().rstrip(","), {"Release": Release})  # what a maintainer pastes
    assert release.name == NAME and release.sha256["model.safetensors"] == digest
    assert release.cfg["input_size"] == (3, 64, 64) and release.split == "grouped"
    assert f"cervattn publish {folder} --repo-id cervattn/{NAME} --dry-run" in out
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(folder)]) == 1
    assert "No checkpoint" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# publish


@pytest.fixture
def release_folder(ckpt, tmp_path):
    eval_path, _ = evaluation_json(tmp_path / "eval.json")
    return export(ckpt[1], tmp_path / "hub" / NAME, eval_json=eval_path)


def test_publish_dry_run_lists_exactly_the_files(release_folder, capsys, monkeypatch):
    folder = release_folder.folder
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.lock").write_text("")  # hidden: never uploaded
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: pytest.fail("dry run touched the Hub"))
    result = publish(folder, f"cervattn/{NAME}", dry_run=True)
    assert result.dry_run and result.commit is None
    assert [(f.path, f.size, f.sha256) for f in result.files] == [
        (name, release_folder.sizes[name], release_folder.sha256[name]) for name in sorted(release_folder.sha256)
    ]
    assert main(["publish", str(folder), "--repo-id", f"cervattn/{NAME}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Would upload to cervattn/" in out and "Dry run: nothing was uploaded." in out
    for name, digest in release_folder.sha256.items():
        assert f"sha256 {digest}" in out and name in out
    assert ".cache" not in out


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "model.pth", "extra/opt.pt", "state.pkl", "last.ckpt"])
def test_publish_refuses_pickle(release_folder, pickle_name, capsys):
    target = release_folder.folder / pickle_name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match=f"Refusing to upload pickle files \\['{pickle_name}'\\]"):
        publish(release_folder.folder, f"cervattn/{NAME}", dry_run=True)
    assert main(["publish", str(release_folder.folder), "--repo-id", f"cervattn/{NAME}", "--dry-run"]) == 1
    assert "Refusing to upload pickle" in capsys.readouterr().err


def test_publish_checks_the_folder_and_repo_id(release_folder, tmp_path):
    folder = release_folder.folder
    with pytest.raises(ValueError, match="test_rcan_densenet"):
        publish(folder, "cervattn/rcan_densenet121.sipakmed_cells", dry_run=True)
    with pytest.raises(ValueError, match="<org>/<arch>.<tag>"):
        publish(folder, "cervattn", dry_run=True)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        publish(folder, f"cervattn/{NAME}", dry_run=True)
    (folder / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match="README.md"):
        plan_upload(folder)


def test_publish_uploads_through_hfapi(release_folder, monkeypatch):
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE=1"):
        publish(release_folder.folder, f"cervattn/{NAME}")
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def create_branch(self, repo_id, **kwargs):
            calls.append(("create_branch", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return type("CommitInfo", (), {"oid": "c" * 40, "commit_url": "https://hf.co/x/commit/c"})()

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    result = publish(release_folder.folder, f"cervattn/{NAME}", revision="v1", private=True)
    assert result.commit == "c" * 40
    assert calls[0] == ("init", "hf_test_token")
    assert calls[1] == ("create_repo", f"cervattn/{NAME}", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[2][0] == "create_branch" and calls[2][2]["branch"] == "v1"
    upload = calls[3][1]
    assert upload["repo_id"] == f"cervattn/{NAME}" and upload["revision"] == "v1"
    assert sorted(upload["allow_patterns"]) == sorted(release_folder.sha256)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(RuntimeError, match="HF_TOKEN"):
        publish(release_folder.folder, f"cervattn/{NAME}")


def test_export_refuses_a_folder_with_pickle(ckpt, tmp_path):
    folder = tmp_path / NAME
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="pickle"):
        export(ckpt[1], folder)
    assert not (folder / "model.safetensors").exists()
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())
    assert os.listdir(folder) == ["pytorch_model.bin"]


def test_training_run_folder_and_evaluation_result(tmp_path):
    """The formats of cervattn.train (best.safetensors + best.json) and cervattn.evaluate
    (EvaluationResult.to_dict) export as they are."""
    from cervattn.checkpoint import save_best
    from cervattn.evaluate import EvaluationResult

    model = trained(seed=5)
    pretrained_cfg = dict(model.pretrained_cfg, input_size=(3, 72, 72), crop_pct=0.9)
    run = tmp_path / "run"
    save_best(run, model, {"arch": ARCH, "args": {"lr": 0.1, "data": str(tmp_path / "sipakmed")}, "epoch": 7,
                           "metrics": {"weighted_f1": 0.5}, "label_names": list(SIPAKMED_CLASSES),
                           "pretrained_cfg": json.loads(json.dumps(pretrained_cfg)), "torch_version": "2.x"})
    _, report = evaluation_json(tmp_path / "unused.json")
    field = report.pop("field_level_accuracy")
    result = EvaluationResult(report, field, np.zeros((0, 5)), np.zeros(0), meta={
        "model": str(run), "split": "test", "data_root": str(tmp_path / "sipakmed")})
    (tmp_path / "eval.json").write_text(json.dumps(result.to_dict()))
    out = export(run, tmp_path / NAME, eval_json=tmp_path / "eval.json")
    assert out.cfg["input_size"] == (3, 72, 72) and out.cfg["crop_pct"] == 0.9
    card = (out.folder / "README.md").read_text()
    assert f"| Accuracy | {report['accuracy'] * 100:.1f} [" in card and "Field-level accuracy" in card
    assert "On the test split, 200 cells" in card and "Weights from epoch 7" in card and "torch 2.x" in card
    published = (out.folder / "evaluation.json").read_text()
    assert str(tmp_path) not in published and str(tmp_path) not in card
    assert torch.equal(logits(timm.create_model(f"local-dir:{out.folder}", pretrained=True)), logits(model))


def test_run_log_gives_compute_curves_and_notes(tmp_path):
    from PIL import Image

    from cervattn.checkpoint import save_best

    model = trained(seed=6)
    run = tmp_path / "run"
    save_best(run, model, {"arch": ARCH, "args": {"lr": 0.1, "pretrained": False}, "epoch": 2,
                           "label_names": list(SIPAKMED_CLASSES)})
    log = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "train_acc": 0.5 + e / 10, "val_acc": 0.4 + e / 10,
            "epoch_time": 60.0, "images_per_s": 20.0 + e} for e in (1, 2, 3)]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    out = export(run, tmp_path / NAME, notes="Target missed by 6 points.")
    card = (out.folder / "README.md").read_text()
    assert "from scratch" in card and "Weights from epoch 2 of 3" in card
    assert "wall time: 3.0 min" in card and "training images/s: 22.0" in card
    assert "## Notes\n\nTarget missed by 6 points." in card and "![Training curves](training_curves.png)" in card
    assert "training_curves.png" in out.sha256
    assert np.asarray(Image.open(out.folder / "training_curves.png").convert("L")).std() > 5


def test_release_entry_carries_the_headline_metrics(ckpt, tmp_path):
    _, path = ckpt
    eval_path, report = evaluation_json(tmp_path / "eval.json")
    result = export(path, tmp_path / "hub" / NAME, eval_json=eval_path)
    assert result.metrics_split == "test"
    assert result.metrics["accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert result.metrics["macro_f1"] == pytest.approx(report["macro_f1"], abs=1e-6)
    assert result.metrics["field_accuracy"] == pytest.approx(report["field_level_accuracy"]["accuracy"], abs=1e-6)
    entry = result.release_entry()
    assert "metrics={'accuracy': " in entry and "metrics_split='test'" in entry
    namespace = {}
    exec("from cervattn.releases import Release\nr = " + entry.strip().rstrip(","), namespace)
    assert dict(namespace["r"].metrics) == result.metrics
    assert export(path, tmp_path / "bare" / NAME).metrics == {}
