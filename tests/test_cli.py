"""The ``cervattn`` command line: parsing, dispatch and the models table."""

import subprocess
import sys

import pytest

import cervattn
from cervattn.cli import build_parser, main
from cervattn.commands import COMMANDS


def test_models_table_lists_matching_models(capsys):
    assert main(["models", "rcan_densenet12*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["model", "params", "(M)"]
    row = next(line for line in out if line.startswith("rcan_densenet121"))
    params, gmacs = row.split()[1:3]
    assert 6.5 < float(params) < 7.5 and 2.5 < float(gmacs) < 3.2  # DenseNet-121 + one CA layer
    assert "rcan_densenet121.tv_in1k" in row


def test_models_markdown_and_unknown_pattern(capsys):
    assert main(["models", "test_rcan*", "--include-test", "--markdown", "--img-size", "64"]) == 0
    assert capsys.readouterr().out.startswith("| model |")
    assert main(["models", "nothing_like_this*"]) == 1
    assert "cervattn models" in capsys.readouterr().err


def test_models_releases_lists_released_weights_with_metrics(capsys):
    from cervattn.releases import RELEASES

    assert main(["models", "--releases", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| release | default of | input px | split | accuracy % |")
    for release in RELEASES:
        row = next(line for line in out.splitlines() if line.startswith(f"| {release.name} |"))
        assert f"| {100 * release.metrics['accuracy']:.1f} |" in row
    assert main(["models", "--releases", "no_such_release*"]) == 1
    assert "cervattn models --releases" in capsys.readouterr().err


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_carries_the_notice(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"] if command else ["--help"])
    assert exit_info.value.code == 0
    assert "Research use only, not for clinical diagnosis." in " ".join(capsys.readouterr().out.split())


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "cervattn.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"cervattn {cervattn.__version__}"
