"""``giugan report`` on runs a real ``giugan sweep`` trained (tiny rows), read back from its outputs.

* two rows x two seeds: mean ± std over seeds of the best-of-N and last evaluations equal the
  statistics of each run's own checkpointed record; seeds, iterations, Params/FLOPs (the profiler's
  counter on the run's networks) and the protocol per row; Markdown, CSV, LaTeX and a plot per row;
* a row whose seeds used different metrics settings is flagged, not averaged;
* an unfinished run and a run without metrics are listed, never dropped;
* a run named after a table row gets the paper's printed FID/IS, which equal its config's header.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import statistics
from pathlib import Path

import pytest
import torch

from giugan.cli import main
from giugan.profiling.counting import count_pair
from giugan.reporting.paper_scores import PAPER_SCORES
from giugan.training.module import GANModule

from .sweep_helpers import ROOT, TINY_RUN_ARGS, giugan, write_tiny_sweep

pytestmark = pytest.mark.slow
SHORT = [*TINY_RUN_ARGS, "--model.generator_iterations", "6", "--model.eval_every", "3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/``: tiny_a, tiny_b x seeds 0, 1; tiny_c's seeds with other sample counts; tiny_d
    without evaluations; tiny_a-s2 cut back to an earlier checkpoint (as a killed run leaves it)."""
    folder = tmp_path_factory.mktemp("report")
    write_tiny_sweep(folder)
    (folder / "rows" / "tiny_c.yaml").write_text(f"__base__: {ROOT / 'configs' / 'quickstart.yaml'}\n__run_name__: tiny_c\n")
    (folder / "rows" / "tiny_d.yaml").write_text(f"__base__: {ROOT / 'configs' / 'quickstart.yaml'}\n__run_name__: tiny_d\n")
    commands = [
        ["tiny.yaml", "--", *SHORT],
        ["rows/tiny_c.yaml", "--seeds", "0", "--", *SHORT],
        ["rows/tiny_c.yaml", "--seeds", "1", "--", *SHORT, "--model.metrics.init_args.num_fake", "32"],
        ["rows/tiny_d.yaml", "--", *SHORT, "--model.eval_every", "0", "--model.metrics", "null"],
        ["rows/tiny_a.yaml", "--seeds", "2", "--", *SHORT],
    ]
    for command in commands:
        result = giugan(folder, "sweep", *command)
        assert result.returncode == 0, result.stderr[-3000:]
    killed = folder / "runs" / "tiny_a-s2" / "checkpoints"
    shutil.copyfile(killed / "iter-00000004.ckpt", killed / "last.ckpt")
    return folder / "runs"


def _record(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["giugan"]["evaluation"]


def _row(markdown: str, name: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_report_prints_mean_and_std_over_seeds_of_best_and_last(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "report"
    assert main(["report", str(runs), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    header = [cell.strip() for cell in printed.splitlines()[0].strip("|").split("|")]
    for name in ("tiny_a", "tiny_b"):
        cells = dict(zip(header, _row(printed, name)))
        seeds = [f"{name}-s0", f"{name}-s1"]
        best = [_record(runs / s)["best"]["judge_frechet"] for s in seeds]
        last = [_record(runs / s)["last"]["judge_frechet"] for s in seeds]
        assert cells["judge Fréchet best"] == f"{statistics.fmean(best):.2f} ± {statistics.stdev(best):.2f}"
        assert cells["judge Fréchet last"] == f"{statistics.fmean(last):.2f} ± {statistics.stdev(last):.2f}"
        assert cells["seeds"] == "2 (0, 1)" and cells["generator iterations"] == "6"
        assert cells["protocol"] == "P1"
    # Params/FLOPs: the profiler's counter on the run's own networks (thop-2020 params, MACs).
    model = GANModule.load_from_checkpoint(runs / "tiny_a-s0" / "checkpoints" / "last.ckpt", map_location="cpu")
    pair = count_pair(model.generator, model.discriminator, model.z_dim)
    cells = dict(zip(header, _row(printed, "tiny_a")))
    assert cells["Params"] == f"{pair.thop_params / 1e6:.2f}M" and cells["FLOPs (MACs)"] == f"{pair.macs() / 1e6:.2f}M"
    # The same numbers unrounded in the CSV; the same table in the written Markdown; LaTeX; plots.
    table = {r["row"]: r for r in csv.DictReader(io.StringIO((output / "report.csv").read_text()))}
    best = [_record(runs / f"tiny_b-s{s}")["best"]["judge_frechet"] for s in (0, 1)]
    assert float(table["tiny_b"]["judge_frechet_best_mean"]) == pytest.approx(statistics.fmean(best), rel=1e-12)
    assert float(table["tiny_b"]["judge_frechet_best_std"]) == pytest.approx(statistics.stdev(best), rel=1e-12)
    assert int(table["tiny_a"]["params"]) == pair.thop_params and int(table["tiny_a"]["macs"]) == pair.macs()
    assert (output / "report.md").read_text() in printed
    tex = (output / "report.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "tiny\\_a" in tex and "$\\pm$" in tex
    assert sorted(p.name for p in (output / "plots").iterdir()) == ["tiny_a.png", "tiny_b.png", "tiny_c.png"]
    assert (output / "plots" / "tiny_a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mixed_protocols_are_flagged_and_unfinished_or_unscored_runs_are_listed(
    runs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["report", str(runs), "--no_counts"]) == 0
    printed = capsys.readouterr().out
    header = [cell.strip() for cell in printed.splitlines()[0].strip("|").split("|")]
    mixed = dict(zip(header, _row(printed, "tiny_c")))
    assert re.fullmatch(r"MIXED P\d, P\d: not averaged", mixed["protocol"])
    assert mixed["judge Fréchet best"] == "-" and mixed["seeds"] == "2 (0, 1)"
    assert '"num_fake": 32' in printed and '"num_fake": 48' in printed
    left_out = printed.split("Runs left out of the averages:")[1]
    assert "tiny_a-s2 (tiny_a, seed 2): unfinished at generator iteration 4 of 6" in left_out
    assert "tiny_d-s0 (tiny_d, seed 0): no metrics" in left_out
    assert _row(printed, "tiny_a")[header.index("seeds")] == "2 (0, 1)"  # s2 not averaged in
    assert dict(zip(header, _row(printed, "tiny_d")))["seeds"] == "0"


def test_a_run_named_after_a_table_row_gets_the_papers_numbers(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copytree(runs / "tiny_b-s0", tmp_path / "ablation_table1_only_g-s0")
    assert main(["report", str(tmp_path / "ablation_table1_only_g-s0"), "--no_counts"]) == 0
    cells = _row(capsys.readouterr().out, "ablation_table1_only_g")
    assert cells[1:4] == ["GIU-GANs Table 1, Only G", "26.24", "4.52"]


def test_the_papers_numbers_are_those_each_row_config_cites() -> None:
    headers = {}
    for config in (ROOT / "configs").rglob("*.yaml"):
        text = config.read_text()
        name = re.search(r"^__run_name__: (\S+)", text, re.MULTILINE)
        if name:
            headers[name[1]] = " ".join(line.lstrip("# ") for line in text.splitlines()[:4])
    for row, paper in PAPER_SCORES.items():
        assert f"FID {paper.fid:.2f}" in headers[row], row
        if paper.inception_score is not None:
            assert re.search(rf"IS\s+{paper.inception_score:.2f}", headers[row]), row


def test_report_of_a_folder_without_runs_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no run folder there" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_row_with_a_preset_has_giugan_profiles_params_and_flops(tmp_path: Path) -> None:
    from giugan.profiling.profile import ProfileCache, paper_rows
    from giugan.reporting.records import RunRecord
    from giugan.reporting.summary import summarise

    run = RunRecord("cifar10_wgan_gp-s0", tmp_path, "cifar10_wgan_gp", 0, "no checkpoint", None, None,
                    "wgan_gp_32", {})
    row = summarise([run]).rows[0]
    profiled = next(r for r in paper_rows("5", ProfileCache(disk=False)) if r["preset"] == "wgan_gp_32")
    assert (row.params, row.macs) == (profiled["params"], profiled["macs"])  # MACs under the row's rule
    assert profiled["match"] == {"params": True, "flops": True}
