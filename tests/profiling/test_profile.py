"""``giugan profile``: the GIU-GANs and iGAN-report table rows, their rule and the command line.

Every number here is an exact integer, read through the JSON output of ``main``. The counting
rules themselves are tested in ``test_counting.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from giugan.profiling.profile import (
    IGAN_TABLE2,
    PAPER_ROWS,
    PARAMS_RULE,
    ProfileCache,
    main,
    table_ids,
    values_match,
)

REPO = Path(__file__).resolve().parents[2]

# Batch-1 counting is tiny work: one intra-op thread is faster on a shared machine.
pytestmark = pytest.mark.usefixtures("single_thread")


def _run_main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def all_rows() -> dict[tuple[str, str, str], dict]:
    """``main(["--all", "--format", "json"])`` keyed by (table, dataset, row)."""
    code, text = _run_main(["--all", "--format", "json"])
    assert code == 0
    rows = json.loads(text)
    keyed = {(r["table"], r["dataset"], r["row"]): r for r in rows}
    assert len(keyed) == len(rows)  # (table, dataset, row) identifies a row
    return keyed


# --------------------------------------------------------------------------------------------
# Paper rows through `main(["--all", "--format", "json"])`
# --------------------------------------------------------------------------------------------

# (table, dataset, row): (judged params = thop-2020 total, MACs, params match, FLOPs match).
C, A = "CIFAR-10", "CelebA"
GIU_32 = (1_915_076, 97_211_009)
EXPECTED_ROWS: dict[tuple[str, str, str], tuple[int, int, bool, bool]] = {
    ("1", C, "Middle D and G"): (1_863_844, 97_215_361, True, False),
    ("1", C, "Shallow D and Deep G"): (1_919_572, 98_098_945, True, False),
    ("1", C, "Deep D and Shallow G"): (*GIU_32, True, False),
    ("1", C, "All the D and G"): (1_937_012, 98_956_289, True, False),
    ("1", C, "Only G"): (1_880_740, 96_784_513, True, False),
    ("1", C, "Only D"): (1_880_740, 96_784_513, True, False),
    **{(t, C, f"GIU-GANs-V{v}"): (*GIU_32, True, False) for t in "23" for v in range(1, 6)},
    ("4", C, "K=3, Group_Channels=16"): (*GIU_32, True, False),
    ("4", C, "K=5, Group_Channels=16"): (1_948_356, 97_743_489, True, False),
    ("4", C, "K=7, Group_Channels=16"): (1_998_276, 98_542_209, False, False),
    ("4", C, "K=3, Group_Channels=8"): (1_933_796, 97_510_529, True, False),
    ("4", C, "K=3, Group_Channels=32"): (1_905_716, 97_061_249, True, False),
    ("5", C, "DCGANs"): (4_341_248, 309_239_808, True, True),
    ("5", C, "WGAN-GP"): (1_847_044, 96_386_049, True, True),
    ("5", C, "LSGANs"): (1_149_284, 117_249_536, True, True),
    ("5", C, "SNGANs"): (1_847_044, 96_357_377, True, True),
    ("5", C, "SAGANs"): (1_975_764, 101_646_337, True, True),
    ("5", C, "GIU-GANs"): (*GIU_32, True, False),
    ("6", A, "WGAN-GP"): (6_571_780, 536_580_097, True, True),
    ("6", A, "WGAN-GP(+2)"): (12_473_092, 687_722_497, True, True),
    ("6", A, "WGAN-GP(+3)"): (12_657_860, 763_482_113, True, False),
    ("6", A, "LSGANs"): (3_632_996, 468_998_144, False, False),
    ("6", A, "SNGANs"): (6_571_780, 536_457_217, True, False),
    ("6", A, "SAGANs"): (7_008_180, 557_582_337, False, True),
    ("6", A, "GIU-GANs"): (6_911_812, 543_196_801, True, False),
    ("7", C, "baseline"): (1_847_044, 96_357_377, True, True),
    ("7", C, "GIU-GANs without GIU module"): (1_846_404, 96_358_017, True, True),
    ("7", C, "GIU-GANs"): (*GIU_32, True, False),
    ("8", C, "GIU-GANs without RBN"): (1_915_716, 97_210_369, True, False),
    ("8", C, "GIU-GANs"): (*GIU_32, True, False),
    ("8", A, "GIU-GANs without RBN"): (6_912_964, 543_195_649, True, False),
    ("8", A, "GIU-GANs"): (6_911_812, 543_196_801, True, False),
}
#: What thop-2020's total leaves out of the trainable count, per preset family: RBN's 5C per
#: RBN layer (G blocks 1 and 3 at 32x32: 5 * (256 + 64); blocks 1 and 4 at 64x64: 5 * (512 + 64))
#: and one gamma per self-attention module (4 per SAGAN pair).
LEFT_OUT = {"rbn_32": 1_600, "rbn_64": 2_880, "sagan": 4}


def test_every_paper_row_is_listed_once(all_rows: dict) -> None:
    giu_rows = {key for key in all_rows if key[0] != "igan2"}
    assert giu_rows == set(EXPECTED_ROWS)
    counts = {t: sum(1 for key in giu_rows if key[0] == t) for t in "12345678"}
    assert counts == {"1": 6, "2": 5, "3": 5, "4": 5, "5": 6, "6": 7, "7": 3, "8": 4}


def test_match_counts(all_rows: dict) -> None:
    """41 rows judged by one parameter rule: Params 38, FLOPs 10, both 9."""
    rows = [row for key, row in all_rows.items() if key[0] != "igan2"]
    assert len(rows) == 41
    assert sum(row["match"]["params"] for row in rows) == 38
    assert sum(row["match"]["flops"] for row in rows) == 10
    assert sum(row["match"]["params"] and row["match"]["flops"] for row in rows) == 9


@pytest.mark.parametrize("key", sorted(EXPECTED_ROWS))
def test_paper_row_counts_and_match(all_rows: dict, key: tuple[str, str, str]) -> None:
    params, macs, params_match, flops_match = EXPECTED_ROWS[key]
    row = all_rows[key]
    assert {"table", "row", "preset", "params", "trainable_params", "macs", "paper_params",
            "paper_flops", "match", "note", "rule", "params_rule"} <= set(row)
    assert (row["params"], row["macs"]) == (params, macs)
    assert row["match"] == {"params": params_match, "flops": flops_match}
    assert isinstance(row["params"], int) and isinstance(row["macs"], int)
    if not (params_match and flops_match):
        assert row["note"], "every non-matching row says why"


def test_the_judged_params_are_the_shown_params(all_rows: dict) -> None:
    """One rule for every row: the match flag is computed from ``params`` itself, labelled."""
    for key, row in all_rows.items():
        if key[0] == "igan2":
            continue
        assert row["params_rule"] == PARAMS_RULE == "thop-2020 total"
        assert row["match"]["params"] == values_match(row["params"], row["paper_params"]), key
        left_out = row["trainable_params"] - row["params"]
        if row["preset"].startswith("giu_gan") and "no_rbn" not in row["preset"]:
            assert left_out == LEFT_OUT["rbn_64" if key[1] == A else "rbn_32"], key
        elif row["preset"].startswith("sagan"):
            assert left_out == LEFT_OUT["sagan"], key
        else:
            assert left_out == 0, key


def test_rows_store_the_printed_strings(all_rows: dict) -> None:
    assert all_rows[("1", C, "Middle D and G")]["paper_flops"] == "97.24m"  # as printed
    k3 = all_rows[("4", C, "K=3, Group_Channels=16")]
    # Table 4's header swaps the columns; values are stored by meaning.
    assert (k3["paper_params"], k3["paper_flops"]) == ("1.92M", "97.23M")
    assert "header" in k3["note"] and "by meaning" in k3["note"]
    dcgan = all_rows[("5", C, "DCGANs")]
    assert (dcgan["paper_params"], dcgan["paper_flops"]) == ("4.34M", "309.24M")
    assert all_rows[("6", A, "WGAN-GP(+3)")]["paper_flops"] == "764.48M"


def test_presets_named_in_the_brief(all_rows: dict) -> None:
    expected = {
        ("1", C, "Deep D and Shallow G"): "giu_gan_32",
        ("1", C, "Shallow D and Deep G"): "giu_gan_plus_shallow_d_deep_g_32",
        ("1", C, "Only G"): "giu_gan_only_g_32",
        ("2", C, "GIU-GANs-V1"): "giu_gan_32",
        ("3", C, "GIU-GANs-V5"): "giu_gan_32",
        ("5", C, "SNGANs"): "sngan_32",
        ("6", A, "WGAN-GP(+3)"): "wgan_gp_plus3_64",
        ("7", C, "GIU-GANs without GIU module"): "giu_gan_no_giu_32",
        ("8", C, "GIU-GANs without RBN"): "giu_gan_no_rbn_32",
        ("8", A, "GIU-GANs"): "giu_gan_64",
    }
    for key, preset in expected.items():
        assert all_rows[key]["preset"] == preset


def test_wgan_gp_rows_use_the_relu_rule_and_say_so(all_rows: dict) -> None:
    for key, row in all_rows.items():
        is_wgan = key[0] in "56" and key[2].startswith("WGAN-GP")
        assert (row["rule"] == "thop-2020+relu") == is_wgan, key
        if is_wgan:
            assert "older thop rule" in row["note"]
        elif key[0] != "igan2":
            assert row["rule"] == "thop-2020"


def test_known_non_matches_explain_themselves(all_rows: dict) -> None:
    assert "1.00M" in all_rows[("6", A, "WGAN-GP(+3)")]["note"]
    assert "unresolved" in all_rows[("6", A, "LSGANs")]["note"].lower()
    k7 = all_rows[("4", C, "K=7, Group_Channels=16")]["note"]
    assert "1.99M" in k7 and "83,200" in k7 and "79,999" in k7
    sagan = all_rows[("6", A, "SAGANs")]["note"]
    assert "7.01M" in sagan and "1.85M" in sagan and "rounds" in sagan
    assert "truncated" not in sagan
    for key, row in all_rows.items():
        giu = row["preset"].startswith("giu_gan")
        if key[0] != "igan2" and giu and not row["match"]["flops"]:
            assert "0.0" in row["note"] and "GIU row" in row["note"], key


def test_shallow_d_deep_g_row_and_its_literal_alternative(all_rows: dict, cache: ProfileCache) -> None:
    """GIU-GAN's two modules + GIU(64) after G block 3 and D block 1 reproduce the printed Params;
    the literal two-module reading stays a preset, named in the row's note with its counts."""
    row = all_rows[("1", C, "Shallow D and Deep G")]
    assert row["trainable_params"] == 1_921_172
    note = row["note"]
    assert "giu_gan_shallow_d_deep_g_32" in note and "1,850,900" in note and "97,245,953" in note
    literal = cache.pair("giu_gan_shallow_d_deep_g_32")
    assert (literal.thop_params, literal.macs()) == (1_850_900, 97_245_953)
    assert not values_match(literal.thop_params, row["paper_params"])
    assert not values_match(literal.macs(), row["paper_flops"])


def test_params_match_is_judged_on_thop_parameter_total(all_rows: dict) -> None:
    """Middle / gc8 round one step high with RBN's 5C; thop-2020's own total (the paper's counter)
    leaves RBN out and reproduces the printed values. That total is what ``params`` shows."""
    for key in [("1", C, "Middle D and G"), ("4", C, "K=3, Group_Channels=8")]:
        row = all_rows[key]
        assert row["match"]["params"]
        assert not values_match(row["trainable_params"], row["paper_params"])
        assert row["params"] == row["trainable_params"] - 5 * (256 + 64)
        assert values_match(row["params"], row["paper_params"])
        assert values_match(row["trainable_params"] - 960, row["paper_params"])  # without RBN


def test_values_match_rounds_half_up_to_the_printed_precision() -> None:
    assert values_match(1_915_000, "1.92M")
    assert not values_match(1_914_999, "1.92M")
    assert values_match(97_235_000, "97.24m")
    assert values_match(7_004_999, "7.00M") and not values_match(7_008_184, "7.00M")
    with pytest.raises(ValueError, match="millions"):
        values_match(1, "1.92")


def test_paper_row_table_is_data() -> None:
    assert table_ids() == ["1", "2", "3", "4", "5", "6", "7", "8", "igan2"]
    assert len(PAPER_ROWS) == 41
    from giugan.nets import preset_names

    assert {row.preset for row in PAPER_ROWS} <= set(preset_names())
    assert {case.preset for case in IGAN_TABLE2} <= set(preset_names())


# --------------------------------------------------------------------------------------------
# iGAN report Table 2
# --------------------------------------------------------------------------------------------


def test_igan_table2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "igan2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["row"] for r in rows] == [f"case {i}" for i in range(1, 8)]
    assert [(r["kernel_size"], r["groups"], r["reduction_ratio"]) for r in rows] == [
        (3, 4, 2), (7, 4, 8), (7, 4, 2), (3, 4, 8), (3, 1, 2), (1, 4, 2), (5, 4, 2)]
    assert [r["paper_params"] for r in rows] == ["800", "520", "2080", "200", "2336", "644", "1312"]
    assert [r["formula_params"] for r in rows] == [800, 520, 2_080, 200, 2_336, 544, 1_312]
    assert [r["module_params"] for r in rows] == [3_300, 2_292, 8_580, 852, 2_409, 2_244, 5_412]
    assert [r["match"]["params"] for r in rows] == [True] * 5 + [False, True]
    assert "644" in rows[5]["note"] and "544" in rows[5]["note"] and "typo" in rows[5]["note"].lower()
    assert rows[0]["preset"] == "igan_64"


def test_igan_table2_is_in_all(all_rows: dict) -> None:
    assert sum(1 for key in all_rows if key[0] == "igan2") == 7


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_preset_json_gives_generator_and_discriminator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--preset", "sngan_32", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["generator"]["params"] == 1_184_067
    assert record["discriminator"]["params"] == 662_977
    assert (record["params"], record["macs"]) == (1_847_044, 96_357_377)
    assert record["params_rule"] == "thop-2020 total"
    assert record["trainable_params"] == record["params"]  # no RBN, no attention: same count
    assert record["generator"]["macs"] + record["discriminator"]["macs"] == record["macs"]
    assert "Table 5 SNGANs (CIFAR-10)" in record["rows"]
    assert main(["--preset", "wgan_gp_32", "--relu-ops", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 96_386_049


def test_text_and_markdown_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "5"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Rules: Params are thop-2020's own parameter total")
    assert "our params (thop-2020 total)" in text and "our trainable (not judged)" in text
    assert "Params: thop-2020 total" in text  # the summary line states it again
    assert "GIU-GANs, Table 5" in text
    assert "309.24M (309,239,808)" in text and "yes/yes" in text
    assert main(["--table", "6", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| 6 | CelebA | WGAN-GP(+2) | wgan_gp_plus2_64 | 12.47M | 12.47M (12,473,092) |" in markdown
    assert main(["--preset", "giu_gan_64"]) == 0
    preset = capsys.readouterr().out
    assert "6.91M (6,914,692)" in preset  # trainable
    assert "6.91M (6,911,812)" in preset and "params (thop-2020 total)" in preset


@pytest.mark.parametrize(
    "argv",
    [["--table", "9"], ["--table", "igan3"], ["--preset", "no_such_gan"], ["--bogus"],
     ["--table", "1", "--all"], ["--format", "csv"], ["--table", "5", "--relu-ops"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip()


def test_unknown_table_and_preset_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "9"]) == 2
    assert "igan2" in capsys.readouterr().err
    assert main(["--preset", "giu_gan_3"]) == 2
    assert "giu_gan_32" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--table" in capsys.readouterr().out


def test_python_dash_m_profile_markdown() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "giugan", "profile", "--table", "5", "--format", "markdown"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| 5 | CIFAR-10 | DCGANs | dcgan_32 | 4.34M | 4.34M (4,341,248) | 309.24M |" in result.stdout


# --- the counts cache ------------------------------------------------------------------------


def test_cached_counts_equal_a_fresh_count_and_skip_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from giugan.nets import presets
    from giugan.profiling.count_cache import cache_file

    monkeypatch.setenv("GIUGAN_CACHE_DIR", str(tmp_path))
    assert main(["--table", "3", "--format", "json"]) == 0
    counted = capsys.readouterr().out
    assert cache_file().is_file()

    def no_building(name: str) -> None:
        raise AssertionError(f"{name} was built although its counts are cached")

    monkeypatch.setattr(presets, "build_preset", no_building)
    assert main(["--table", "3", "--format", "json"]) == 0
    assert capsys.readouterr().out == counted
    monkeypatch.undo()
    monkeypatch.setenv("GIUGAN_CACHE_DIR", str(tmp_path / "other"))
    assert main(["--table", "3", "--format", "json", "--no-cache"]) == 0
    assert capsys.readouterr().out == counted
    assert not (tmp_path / "other").exists()  # --no-cache writes nothing


def test_a_malformed_cache_is_counted_again_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from giugan.profiling.count_cache import cache_file, load_counts

    monkeypatch.setenv("GIUGAN_CACHE_DIR", str(tmp_path))
    assert main(["--preset", "giu_gan_32", "--format", "json"]) == 0
    counted = capsys.readouterr().out
    for broken in ("{not json", '{"giu_gan_32": {"generator_params": 1}}', "[]"):
        cache_file().write_text(broken)
        assert load_counts(cache_file()) == {}
        assert main(["--preset", "giu_gan_32", "--format", "json"]) == 0
        assert capsys.readouterr().out == counted
        assert set(load_counts(cache_file())) == {"giu_gan_32"}


def test_the_cache_key_follows_the_sources_and_torch(tmp_path: Path) -> None:
    from giugan.profiling.count_cache import source_key

    nets = tmp_path / "nets"
    nets.mkdir()
    (nets / "a.py").write_text("x = 1\n")
    key = source_key([nets], "2.14.1")
    assert source_key([nets], "2.14.1") == key
    assert source_key([nets], "2.15.0") != key
    (nets / "a.py").write_text("x = 2\n")
    assert source_key([nets], "2.14.1") != key
    (nets / "a.py").write_text("x = 1\n")
    (nets / "b.py").write_text("")
    assert source_key([nets], "2.14.1") != key


def test_an_unwritable_cache_folder_leaves_the_command_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GIUGAN_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot exist
    assert main(["--preset", "giu_gan_32", "--format", "json"]) == 0
    assert '"preset": "giu_gan_32"' in capsys.readouterr().out
