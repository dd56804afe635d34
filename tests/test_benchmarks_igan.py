"""benchmarks/igan_timing.py: its record's structure and the report's relative times.

No timing is asserted here (speed comparisons live in ``benchmarks/``); the runs are tiny.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_scripts import load_benchmark

igan_timing = load_benchmark("igan_timing")
pytestmark = pytest.mark.usefixtures("single_thread")


def test_main_prints_seven_cases_and_appends_records(tmp_path: Path, capsys) -> None:
    argv = ["--repeats", "1", "--layer-batch", "1", "--skip-iterations", "--threads", "1",
            "--results-dir", str(tmp_path)]
    assert igan_timing.main(argv) == 0
    assert igan_timing.main(argv) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]
    assert [int(cells[0]) for cells in lines] == [1, 2, 3, 4, 5, 6, 7] * 2
    (path,) = tmp_path.glob("igan_timing-*.json")
    records = json.loads(path.read_text())
    assert len(records) == 2
    record = records[0]
    assert record["benchmark"] == "igan_timing" and record["device"]["type"] == "cpu"
    assert record["settings"]["repeats"] == 1 and record["settings"]["torch_threads"] == 1
    cases = record["cases"]
    assert [(c["kernel_size"], c["groups"], c["reduction_ratio"]) for c in cases] == [
        (3, 4, 2), (7, 4, 8), (7, 4, 2), (3, 4, 8), (3, 1, 2), (1, 4, 2), (5, 4, 2)]
    assert [c["report_seconds"] for c in cases] == [0.154, 0.333, 0.342, 0.152, 0.152, 0.120, 0.230]
    assert [round(c["report_relative"], 2) for c in cases] == [1.0, 2.16, 2.22, 0.99, 0.99, 0.78, 1.49]
    for case in cases:
        assert len(case["layer_seconds"]) == 1 and case["layer_seconds"][0] > 0
        assert case["layer_median"] == case["layer_seconds"][0]
        assert case["iteration_median"] is None
    assert cases[0]["layer_relative"] == 1.0
    assert cases[3]["layer_relative"] == pytest.approx(cases[3]["layer_median"] / cases[0]["layer_median"])


def test_interleaving_visits_every_case_each_repeat_with_a_rotating_start() -> None:
    order: list[int] = []
    runs = [lambda i=i: order.append(i) for i in range(3)]
    seconds = igan_timing._interleaved(runs, 2, torch.device("cpu"))
    assert order == [0, 1, 2, 0, 1, 2, 1, 2, 0]  # warm-up, repeat 1, repeat 2 (starts at 1)
    assert [len(s) for s in seconds] == [2, 2, 2]


def test_training_iteration_updates_both_networks(monkeypatch) -> None:
    built = {}
    original = igan_timing.build_preset

    def remember(name: str):
        built["nets"] = original(name)
        return built["nets"]

    monkeypatch.setattr(igan_timing, "build_preset", remember)
    run = igan_timing.training_iteration("igan_64", 1, torch.device("cpu"))
    generator, critic = built["nets"]
    before = [p.detach().clone() for p in (*generator.parameters(), *critic.parameters())]
    run()
    after = [*generator.parameters(), *critic.parameters()]
    assert all(torch.isfinite(p).all() for p in after)
    changed = [not torch.equal(a, b) for a, b in zip(before, after, strict=True)]
    assert any(changed[: len(list(generator.parameters()))])
    assert any(changed[len(list(generator.parameters())):])
    assert all(p.requires_grad for p in critic.parameters())  # unfrozen after the G step


def test_cuda_without_a_gpu_says_so(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings, _ = igan_timing.parse_args(["--device", "cuda"])
    assert (settings.layer_batch, settings.iteration_batch, settings.repeats) == (64, 64, 20)
    with pytest.raises(SystemExit, match="CUDA is not available"):
        igan_timing.measure(settings)
