"""The README is executable documentation: its quickstart runs as printed, its test command is what
CI runs, and every user-facing surface carries the research-use-only notice."""

import re

import pytest
from conftest import REPO

import cervattn

README = (REPO / "README.md").read_text()


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert len(_code_blocks(setup, "bash")) == 2


def test_ci_runs_the_readme_test_command():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    test_command = _code_blocks(setup, "bash")[1].strip()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_quickstart_runs_as_printed(capsys, tmp_path, monkeypatch):
    block = _code_blocks(README.split("## Quickstart", 1)[1], "python")[0]
    assert len(block.strip().splitlines()) <= 10
    monkeypatch.chdir(REPO)  # the README's paths are relative to the repository
    figure = REPO / "dyskeratotic_ig.png"
    try:
        exec(compile(block, "README.md quickstart", "exec"), {})
        assert figure.stat().st_size > 10_000
    finally:
        figure.unlink(missing_ok=True)
    label, probability = capsys.readouterr().out.splitlines()[0].rsplit(" ", 1)
    assert label in cervattn.SIPAKMED_CLASSES and 0.2 <= float(probability) <= 1.0


@pytest.mark.parametrize(
    "path", ["README.md", "LICENSE", "CHANGELOG.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md"))]
)
def test_research_use_notice_everywhere(path):
    assert "research use only" in (REPO / path).read_text().lower(), f"{path} lacks the research-use-only notice"


def test_main_command_classifies_and_explains_offline(tmp_path, monkeypatch):
    """The README's first set-up command, after its install step, on the released weights."""
    import shlex

    from cervattn.cli import main

    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    command = _code_blocks(setup, "bash")[0].strip().split("&&", 1)[1]
    args = shlex.split(command)
    assert args[0] == "cervattn"
    args[args.index("--out") + 1] = str(tmp_path / "explanations")
    monkeypatch.chdir(REPO)
    assert main(args[1:] + ["--no-progress"]) == 0
    assert len(list((tmp_path / "explanations").glob("*.png"))) == 5
    assert (tmp_path / "explanations" / "predictions.csv").is_file()
