"""Composed configs (``__base__``/``__run_name__``): the command line the CLI really parses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from giugan.cli.composition import composed_sys_argv, expand_config_bases


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def configs_of(args: list[str]) -> list[object]:
    """The ``--config`` values of an expanded command line, YAML strings parsed."""
    assert args[::2] == ["--config"] * (len(args) // 2)
    return [value if Path(value).is_file() else yaml.safe_load(value) for value in args[1::2]]


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """row.yaml -> sub/base.yaml -> top.yaml, the top one naming loggers by ${run_name}."""
    write(tmp_path / "top.yaml", "model: {eval_every: 3, n_critic: 1}\nlogger: {name: '${run_name}', dir: 'runs/${run_name}'}\n")
    write(tmp_path / "sub" / "base.yaml", "__base__: ../top.yaml\nmodel: {n_critic: 5}\n")
    return write(tmp_path / "sub" / "row.yaml", "__base__: base.yaml\n__run_name__: my_row\nmodel: {preset: p}\n")


def test_a_row_expands_into_its_chain_oldest_first(chain: Path) -> None:
    args = expand_config_bases(["fit", "--config", str(chain), "--model.n_critic", "2"])
    assert args[0] == "fit" and args[-2:] == ["--model.n_critic", "2"]
    assert configs_of(args[1:-2]) == [
        {"model": {"eval_every": 3, "n_critic": 1}, "logger": {"name": "my_row", "dir": "runs/my_row"}},
        {"model": {"n_critic": 5}},
        {"model": {"preset": "p"}},
    ]


def test_equals_form_and_short_flag_expand_too(chain: Path) -> None:
    assert expand_config_bases([f"--config={chain}"]) == expand_config_bases(["-c", str(chain)])
    assert len(expand_config_bases([f"--config={chain}"])) == 6


def test_plain_configs_and_strings_pass_through(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", "model: {n_critic: 3}\n")
    args = ["fit", "--config", str(plain), "--config", "{model: {n_critic: 2}}", "--trainer.devices", "1"]
    assert expand_config_bases(args) == args
    assert expand_config_bases(expand_config_bases(args)) == args


def test_expanding_twice_changes_nothing(chain: Path) -> None:
    once = expand_config_bases(["fit", "--config", str(chain)])
    assert expand_config_bases(once) == once  # what DDP's re-launched ranks see


def test_a_cycle_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "__base__: b.yaml\n")
    write(tmp_path / "b.yaml", "__base__: a.yaml\n")
    with pytest.raises(ValueError, match=r"__base__ chain is a cycle \(.*a\.yaml -> .*b\.yaml -> .*a\.yaml\)"):
        expand_config_bases(["--config", str(tmp_path / "a.yaml")])


def test_a_missing_base_names_both_files(tmp_path: Path) -> None:
    row = write(tmp_path / "row.yaml", "__base__: nowhere.yaml\n")
    with pytest.raises(ValueError, match=r"row\.yaml: its __base__ .*nowhere\.yaml does not exist"):
        expand_config_bases(["--config", str(row)])


def test_a_placeholder_without_run_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "logger: {name: '${run_name}'}\n")
    row = write(tmp_path / "row.yaml", "__base__: base.yaml\n")
    with pytest.raises(ValueError, match=r"uses \$\{run_name\} .* Add `__run_name__: <name>`"):
        expand_config_bases(["--config", str(row)])


def test_a_base_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "- a\n- b\n")
    row = write(tmp_path / "row.yaml", "__base__: base.yaml\n")
    with pytest.raises(ValueError, match=r"base\.yaml must be a mapping .*\(it is a list\)"):
        expand_config_bases(["--config", str(row)])


def test_a_row_file_jsonargparse_must_judge_passes_through(tmp_path: Path) -> None:
    listed = write(tmp_path / "listed.yaml", "- a\n")
    args = ["--config", str(listed)]
    assert expand_config_bases(args) == args  # jsonargparse reports it with its own message


def test_unreadable_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.yaml", "model: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml is not valid YAML: .* at line 2, column 1"):
        expand_config_bases(["--config", str(broken)])


def test_sys_argv_is_expanded_only_inside_the_context(chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["giugan", "fit", "--config", str(chain)])
    with composed_sys_argv():
        assert sys.argv[0] == "giugan" and len(sys.argv) == 8
    assert sys.argv == ["giugan", "fit", "--config", str(chain)]
