"""The profile numbers quoted in README.md and docs/counting.md are those `giugan profile` prints.

The passages between ``<!-- profile-... -->`` markers are rendered from the records of
``python -m giugan profile --all --format json`` (a subprocess, the user's command) and compared
with the files; ``python -m giugan.profiling.doc_numbers`` rewrites them after a change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from giugan.profiling.doc_numbers import MARKED_FILES, blocks, fill, main, quoted
from giugan.profiling.paper_tables import TABLE1_FLOPS_DIFFERENCES_NOT_REPRODUCED

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """``giugan profile --all --format json``, run as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "giugan", "profile", "--all", "--format", "json"], check=False, capture_output=True,
        text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", sorted(MARKED_FILES))
def test_quoted_numbers_are_the_profiles(records: list[dict], name: str) -> None:
    passages = blocks(records)
    text = (ROOT / name).read_text()
    for passage in MARKED_FILES[name]:
        assert quoted(text, passage).strip() == passages[passage], (
            f"{name}: the '{passage}' passage differs from `giugan profile`; run "
            f"python -m giugan.profiling.doc_numbers"
        )


def test_counts_passage_states_the_profiles_counts(records: list[dict]) -> None:
    rows = [r for r in records if r["table"] != "igan2"]
    passage = blocks(records)["profile-counts"]
    params = sum(r["match"]["params"] for r in rows)
    flops = sum(r["match"]["flops"] for r in rows)
    assert passage.startswith(f"Of the {len(rows)} rows, Params match the printed value for {params} ")
    assert f" and FLOPs for {flops} (" in passage
    for row in rows:
        if not row["match"]["params"]:
            assert row["row"] in passage


def test_table1_flops_differences_the_note_names(records: list[dict]) -> None:
    """The profile note's claim (which Table 1 differences are not reproduced; Table 4's all are)
    is what the counts give: All +1.745M against 1.79-1.81M, Shallow D/Deep G +0.888M against
    0.91-0.93M, Only G/D -0.4265M against -0.45..-0.43M."""
    differences = {(r["table"], r["row"]): r["difference"] for r in records if r.get("difference")}
    missed = tuple(row for (table, row), d in differences.items() if not d["flops"]["reproduced"] and table == "1")
    assert missed == TABLE1_FLOPS_DIFFERENCES_NOT_REPRODUCED
    assert all(d["flops"]["reproduced"] for (table, _), d in differences.items() if table == "4")
    all_rows = differences[("1", "All the D and G")]["flops"]
    assert (all_rows["ours"], all_rows["paper_range"]) == (1_745_280, ["1.790", "1.810"])
    assert differences[("1", "Shallow D and Deep G")]["flops"]["ours"] == 887_936
    assert differences[("1", "Only G")]["flops"]["ours"] == -426_496
    note = next(r["note"] for r in records if r["preset"] == "giu_gan_32" and r["table"] == "1")
    assert "not for Table 1's placements" in note and "'All the D and G'" in note


def test_the_writer_fixes_a_stale_copy_and_check_reports_it(
    records: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in MARKED_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("Of the 41 rows, Params match the printed value for 38",
                                                 "Of the 41 rows, Params match the printed value for 37"))
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "README.md: the profile numbers differ" in capsys.readouterr().err
    assert main(["--root", str(tmp_path)]) == 0
    assert readme.read_text() == (ROOT / "README.md").read_text()
    assert main(["--root", str(tmp_path), "--check"]) == 0


def test_fill_refuses_a_file_without_markers() -> None:
    with pytest.raises(ValueError, match="no <!-- profile-counts -->"):
        fill("no markers here", {"profile-counts": "x"}, ["profile-counts"])
