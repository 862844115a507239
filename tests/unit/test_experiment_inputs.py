"""`harness experiment` refuses what it cannot run or plot in one line (experiments/base.py): a CSV that is
missing, empty, not text or another experiment's under --plot-only, and a setting an experiment refuses
(Fig. 13 without colocated NFs). Each was a traceback from pandas or a RuntimeError."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main


@pytest.mark.parametrize("csv, message", [
    (None, "no such file: run the experiment first (harness experiment limit)"),
    (b"", "not a CSV to plot"),
    (b"a,b\n", "has no rows to plot"),
    (b"a,b\n1,2\n", "is not a limit CSV: no column 'platform'"),
    (bytes(range(128, 256)), "not a CSV to plot"),
])
def test_plot_only_on_a_wrong_csv_is_one_line(tmp_path: Path, csv: bytes | None, message: str) -> None:
    if csv is not None:
        (tmp_path / "limit.csv").write_bytes(csv)
    args = ["--set", f"results.dir={tmp_path}", "experiment", "limit", "--plot-only"]
    result = CliRunner().invoke(main, args, obj={})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_a_placement_an_experiment_refuses_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--set", f"results.dir={tmp_path}", "--set",
                                       f"machine.runtime_dir={tmp_path / 'rt'}", "--set",
                                       "platforms.serpens.colocate=false", "experiment", "figure-13"], obj={})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "needs platforms.serpens.colocate: true" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.csv")), "nothing was opened"
