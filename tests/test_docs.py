"""The documentation site builds without warnings and lists every registered model."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

import cervattn


@pytest.mark.parametrize("name", cervattn.list_models())
def test_models_page_lists_every_architecture(name):
    assert f"| {name} |" in (REPO / "docs" / "models.md").read_text()


def test_cli_page_documents_every_command():
    from cervattn.commands import COMMANDS

    text = (REPO / "docs" / "cli.md").read_text()
    for command in COMMANDS:
        assert f"cervattn {command}" in text


def test_docs_build_strict(tmp_path):
    if shutil.which("mkdocs") is None and not (REPO / ".venv" / "bin" / "mkdocs").exists():
        pytest.skip('mkdocs is not installed: pip install -e ".[docs]"')
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
