import json

from peakready import runfolder
from peakready.cli import main


def test_help_lists_no_command_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: peakready" in capsys.readouterr().out


def test_run_folder_is_created_with_run_json(tmp_path):
    run_dir = runfolder.create(tmp_path, label="unit")
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "running" and data["run_id"] == run_dir.name
    assert (run_dir / "samples").is_dir()
    runfolder.update_run_json(run_dir, status="completed")
    assert runfolder.read_run_json(run_dir)["status"] == "completed"


def test_a_reports_dir_that_cannot_be_created_is_bad_input(tmp_path):
    import pytest

    from peakready import runfolder
    from peakready.errors import BadInput

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BadInput, match="a-file"):
        runfolder.create(blocker / "reports", label="x")


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from peakready.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                yield f"{path} {action.option_strings[-1]}", action.help

    missing = [name for name, text in walk(build_parser(), "peakready") if not text]
    assert missing == []
