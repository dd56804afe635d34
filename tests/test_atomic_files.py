"""giugan.atomic_files: a JSON file is replaced whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giugan.atomic_files import write_json_atomically


def test_writes_and_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = write_json_atomically(tmp_path / "sub" / "a.json", {"x": 1}, indent=2)
    assert json.loads(path.read_text()) == {"x": 1}
    with pytest.raises(TypeError):
        write_json_atomically(path, {"x": object()})  # not serialisable: fails halfway through
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary left behind
