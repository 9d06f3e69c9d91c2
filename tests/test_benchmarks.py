"""Smoke runs of the benchmarks that the docs quote, so that they keep working (tiny models)."""

import importlib.util
import json

import pytest
from conftest import REPO, sipakmed_root


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_faithfulness_smoke(tmp_path, monkeypatch):
    bench = _load("bench_faithfulness")
    n_fields = 1 if sipakmed_root() is not None else 0
    if sipakmed_root() is not None:
        monkeypatch.setenv("CERVATTN_SIPAKMED", str(sipakmed_root()))
    md, js = tmp_path / "f.md", tmp_path / "f.json"
    bench.main(["--models", "test_rcan_densenet", "test_ran_densenet", "--images", str(REPO / "examples" / "images"),
                "--n-images", "2", "--steps", "3", "--ig-steps", "3", "--random-orders", "1",
                "--n-randomization", "1", "--n-fields", str(n_fields), "--field-size", "96",
                "--field-ig-steps", "2", "--markdown", str(md), "--json", str(js),
                "--figures", str(tmp_path / "figs"), "--n-figures", "1"])
    text = md.read_text()
    for method in ("integrated_gradients", "saliency", "smoothgrad", "gradcam", "random order"):
        assert f"| test_rcan_densenet | {method} |" in text
    assert "Paired: test_rcan_densenet minus the other model" in text
    results = json.loads(js.read_text())["results"]
    assert len(results["test_ran_densenet"]["cells"]["integrated_gradients"]["del"]) == 2
    assert len(results["test_rcan_densenet"]["field_paths"]) == n_fields
    if n_fields:
        assert "**Fields**" in text
        assert len(list((tmp_path / "figs").glob("field_0_*.png"))) == 2  # IG and Grad-CAM


def test_bench_faithfulness_refuses_the_test_split():
    bench = _load("bench_faithfulness")
    with pytest.raises(SystemExit):
        bench.main(["--split", "test", "--n-images", "1"])
