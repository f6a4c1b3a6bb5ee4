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
