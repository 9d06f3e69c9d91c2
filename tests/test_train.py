"""Training: run files, resume equals an uninterrupted run, torchrun/DDP equals one process, CLI, real data."""

import json
import os
import subprocess
import sys

import pytest
import torch
from fake_sipakmed import make_fake_sipakmed, write_fake_splits
from safetensors.torch import load_file

from cervattn.checkpoint import load_model, read_checkpoint
from cervattn.cli import main
from cervattn.constants import SIPAKMED_CLASSES
from cervattn.data import SIPaKMeD, eval_transform
from cervattn.evaluate import evaluate
from cervattn.train import TrainConfig, resume, train

LOG_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_weighted_f1", "val_macro_f1", "lr",
            "epoch_time", "train_time", "images_per_s", "best"}




@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fake")
    root = make_fake_sipakmed(tmp / "data", fields_per_class=4, cells_per_field=4, size=(40, 36))
    return root, write_fake_splits(tmp / "splits.csv", fields_per_class=4, cells_per_field=4)


def _cfg(fake, out, **kwargs) -> TrainConfig:
    root, splits = fake
    base = dict(model="test_rcan_densenet", data=str(root), out=str(out), split_file=str(splits), img_size=32,
                epochs=2, batch_size=8, workers=0, progress=False)
    return TrainConfig(**{**base, **kwargs})


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_run_writes_log_checkpoints_and_best_weights(fake, tmp_path):
    result = train(_cfg(fake, tmp_path / "run"))
    run = tmp_path / "run"
    log = _log(run)
    assert [r["epoch"] for r in log] == [1, 2] and all(LOG_KEYS <= set(r) for r in log)
    assert all(r["images_per_s"] > 0 and 0 <= r["val_acc"] <= 1 for r in log)

    last = torch.load(run / "last.pt", weights_only=True)  # no pickled code: loadable safely
    assert {"model", "arch", "args", "epoch", "metrics", "optimizer", "scheduler", "ema", "scaler", "rng",
            "best_metric", "best_epoch"} <= set(last)
    assert last["epoch"] == 2 and last["arch"] == "test_rcan_densenet" and last["args"]["img_size"] == 32
    assert isinstance(last["rng"]["torch"], torch.Tensor)

    sidecar = json.loads((run / "best.json").read_text())
    best = max(log, key=lambda r: r["val_acc"])  # first epoch reaching the maximum wins
    assert sidecar["epoch"] == best["epoch"] == result.best_epoch
    assert sidecar["metrics"]["accuracy"] == best["val_acc"] == result.best_metrics["accuracy"]
    assert sidecar["arch"] == "test_rcan_densenet" and sidecar["pretrained_cfg"]["input_size"] == [3, 32, 32]
    assert set(load_file(run / "best.safetensors")) == set(last["model"])

    # the saved best weights reproduce the validation accuracy recorded for them
    loaded = load_model(run)
    assert loaded.source == "checkpoint" and loaded.model.pretrained_cfg["input_size"] == (3, 32, 32)
    root, splits = fake
    val = SIPaKMeD(root, split="val", splits=splits, transform=eval_transform(loaded.model))
    assert evaluate(loaded.model, val, n_boot=0).accuracy == pytest.approx(sidecar["metrics"]["accuracy"])

    with pytest.raises(FileExistsError, match="resume"):
        train(_cfg(fake, run))


def test_resume_after_kill_equals_uninterrupted_run(fake, tmp_path):
    # every piece of state that resume must restore: schedule position, EMA, label smoothing, optimizer
    opts = dict(sched="cosine", warmup_epochs=0.5, ema=True, ema_decay=0.9, label_smoothing=0.1, opt="adamw")
    train(_cfg(fake, tmp_path / "full", **opts))
    train(_cfg(fake, tmp_path / "killed", stop_after_epoch=1, **opts))
    assert read_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 1
    # the second half runs with a DataLoader worker: augmentation is seeded per image, not per process
    result = resume(tmp_path / "killed", workers=1)
    assert result.epochs_done == 2
    full, resumed = (read_checkpoint(tmp_path / name / "last.pt") for name in ("full", "killed"))
    for key in full["model"]:
        assert torch.equal(full["model"][key], resumed["model"][key]), key
    for key in full["ema"]:
        assert torch.equal(full["ema"][key], resumed["ema"][key]), key
    assert full["optimizer"]["param_groups"][0]["lr"] == resumed["optimizer"]["param_groups"][0]["lr"]
    a, b = (load_file(tmp_path / name / "best.safetensors") for name in ("full", "killed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if "time" not in k and k != "images_per_s"} for r in _log(tmp_path / "full")]
    assert strip == [{k: v for k, v in r.items() if "time" not in k and k != "images_per_s"}
                     for r in _log(tmp_path / "killed")]
    with pytest.raises(KeyError, match="lr"):
        resume(tmp_path / "killed", lr=0.1)


def test_torchrun_two_processes_match_one_process(fake, tmp_path):
    # GroupNorm model: with batch norm, CPU DDP normalises per process (no SyncBatchNorm on CPU)
    root, splits = fake
    args = ["--model", "test_efficientnet_gn", "--data", str(root), "--split-file", str(splits), "--img-size", "32",
            "--epochs", "2", "--batch-size", "8", "--workers", "0", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "cervattn.cli", "train", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best epoch") == 1  # only rank 0 reports and writes
    train(TrainConfig("test_efficientnet_gn", str(root), str(tmp_path / "one"), split_file=str(splits), img_size=32,
                      epochs=2, batch_size=8, workers=0, progress=False))
    a, b = (load_file(tmp_path / name / "best.safetensors") for name in ("ddp", "one"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert [r["val_acc"] for r in _log(tmp_path / "ddp")] == [r["val_acc"] for r in _log(tmp_path / "one")]


def test_cli_train_amp_and_errors(fake, tmp_path, capsys):
    root, splits = fake
    argv = ["train", "--model", "test_ran_resnet", "--data", str(root), "--split-file", str(splits), "--out",
            str(tmp_path / "cli"), "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0",
            "--amp", "--opt", "sgd", "--early-stopping", "3", "--no-progress", "--threads", "1"]
    assert main(argv) == 0
    assert "best epoch 1/1" in capsys.readouterr().out
    args = json.loads((tmp_path / "cli" / "best.json").read_text())["args"]
    assert args["amp"] is True and args["opt"] == "sgd" and args["weight_decay"] == 1e-4 and args["lr"] == 1e-3
    assert main(["train", "--model", "test_ran_resnet"]) == 2
    assert "--data, --out required" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sched='linear' is not one of"):
        _cfg(fake, tmp_path / "x", sched="linear")


@pytest.mark.realdata
def test_real_sipakmed_smoke(real_sipakmed, tmp_path, capsys):
    run = tmp_path / "real"
    train(TrainConfig("test_rcan_densenet", str(real_sipakmed), str(run), img_size=32, epochs=1, batch_size=16,
                      limit_train=64, limit_val=32, workers=0, cache=True, progress=False))
    assert _log(run)[0]["epoch"] == 1 and (run / "best.safetensors").is_file()
    assert main(["evaluate", str(run), "--data", str(real_sipakmed), "--split", "val", "--n-boot", "50",
                 "--json", str(tmp_path / "val.json")]) == 0
    report = json.loads((tmp_path / "val.json").read_text())
    assert report["n_images"] == 826 and report["split"] == "val" and report["n_missing"] == 0
    assert report["field_level"]["n_fields"] > 50


@pytest.mark.realdata
def test_real_multi_cell_fields_end_to_end(real_sipakmed, tmp_path, capsys):
    """The multi-cell path on the real field images there are: train, evaluate, predict, explain."""
    run = tmp_path / "fields"
    train(TrainConfig("test_rcan_densenet", str(real_sipakmed), str(run), kind="multi", img_size=64, epochs=1,
                      batch_size=8, workers=0, cache=True, progress=False))
    log = _log(run)
    assert log[0]["epoch"] == 1 and (run / "best.safetensors").is_file()
    assert main(["evaluate", str(run), "--data", str(real_sipakmed), "--kind", "multi", "--split", "val",
                 "--n-boot", "20", "--json", str(tmp_path / "fields.json")]) == 0
    report = json.loads((tmp_path / "fields.json").read_text())
    assert report["split"] == "val" and report["n_images"] == 12  # the val fields of this copy
    field = next(real_sipakmed.glob("im_Metaplastic/im_Metaplastic/*.webp"))
    capsys.readouterr()
    assert main(["predict", str(field), "--model", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["label"] in SIPAKMED_CLASSES
    assert main(["explain", str(field), "--model", str(run), "--out", str(tmp_path / "ex"), "--n-steps", "4",
                 "--no-progress"]) == 0
    assert len(list((tmp_path / "ex").rglob("*.png"))) == 1
