"""The released weights in hub/: files match the release table, cards match their evaluations,
and (with the real data) the weights reproduce the card's validation accuracy."""

import json

import pytest

import cervattn
from cervattn.hub import CHECKOUT_MIRROR, sha256_file
from cervattn.releases import RELEASES, WEIGHTS_FILE

RELEASED = [r.name for r in RELEASES]


def test_every_release_folder_is_in_the_table():
    folders = {p.name for p in CHECKOUT_MIRROR.iterdir() if p.is_dir()}
    assert folders == set(RELEASED)


@pytest.mark.parametrize("release", RELEASES, ids=RELEASED)
def test_files_match_the_release_table(release):
    folder = CHECKOUT_MIRROR / release.name
    files = {p.name for p in folder.iterdir() if p.is_file()}
    assert files == set(release.sha256) and WEIGHTS_FILE in files
    for name, digest in release.sha256.items():
        assert sha256_file(folder / name) == digest, f"{release.name}/{name} differs from the release table"
    assert not any(name.endswith((".pt", ".pth", ".bin", ".pkl", ".ckpt")) for name in files)
    assert (folder / WEIGHTS_FILE).stat().st_size < 250e6


@pytest.mark.parametrize("release", RELEASES, ids=RELEASED)
def test_card_reports_its_evaluation(release):
    folder = CHECKOUT_MIRROR / release.name
    card = (folder / "README.md").read_text()
    evaluation = json.loads((folder / "evaluation.json").read_text())
    report = evaluation["metrics"]
    for key in ("accuracy", "weighted_f1", "macro_f1"):
        assert f"{100 * report[key]:.1f}" in card, f"card does not show {key} = {report[key]}"
    assert "research use only, not for clinical diagnosis" in card.lower()
    from cervattn.export import headline_metrics

    assert release.metrics_split == evaluation["split"]
    assert dict(release.metrics) == pytest.approx(headline_metrics(evaluation), abs=1e-6)
    assert "from scratch" in card.lower()


@pytest.mark.realdata
@pytest.mark.parametrize("release", RELEASES, ids=RELEASED)
def test_weights_reproduce_the_card(release, real_sipakmed):
    from cervattn.evaluate import evaluate_model

    evaluation = json.loads((CHECKOUT_MIRROR / release.name / "evaluation.json").read_text())
    split = evaluation["split"]
    result = evaluate_model(release.name, real_sipakmed, split=split, n_boot=10)
    assert abs(result.report["accuracy"] - evaluation["metrics"]["accuracy"]) <= 0.005


@pytest.mark.parametrize("release", RELEASES, ids=RELEASED)
def test_pretrained_loads_offline_from_the_checkout(release):
    model = cervattn.create_model(release.name, pretrained=True).eval()
    assert tuple(model.pretrained_cfg["label_names"]) == cervattn.SIPAKMED_CLASSES
    assert model.pretrained_cfg["hf_hub_id"] == f"cervattn/{release.name}"
