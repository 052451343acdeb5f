import json

import pandas as pd
import pytest

from promolift.io import atomic_directory, atomic_write_frame, atomic_write_json


def test_atomic_json_and_frame(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    frame = pd.DataFrame({"id": [1, 2], "arm": ["a", "b"]})
    atomic_write_frame(tmp_path / "p.csv", frame)
    atomic_write_frame(tmp_path / "p.parquet", frame)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p.csv"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "p.csv", "p.parquet"]


def test_failed_write_leaves_old_file(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"v": object()})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "bundle"
    with atomic_directory(target) as d:
        (d / "f").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            (d / "f").write_text("two")
            raise RuntimeError("crash half-way")
    assert (target / "f").read_text() == "one"
    with atomic_directory(target) as d:
        (d / "f").write_text("three")
    assert (target / "f").read_text() == "three"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
