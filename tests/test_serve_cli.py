"""``promolift api-key`` and ``promolift serve`` argument handling; settings from the environment."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from promolift.cli import app
from promolift.errors import ConfigError
from promolift.serve.auth import KeyRing, add_key
from promolift.serve.decide import Prices, decide
from promolift.serve.settings import ServeSettings

runner = CliRunner()


def test_api_key_command_stores_only_the_hash(tmp_path):
    path = tmp_path / "keys.json"
    r = runner.invoke(app, ["api-key", "shop", "--role", "decide", "--file", str(path)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("pl_") and key not in path.read_text()
    assert KeyRing.load(path).identify(key).roles == {"decide"}
    again = runner.invoke(app, ["api-key", "shop", "--role", "admin", "--file", str(path)])
    assert again.exit_code == 2 and "exists" in again.output
    bad = runner.invoke(app, ["api-key", "ops", "--role", "root", "--file", str(path)])
    assert bad.exit_code == 2 and "unknown role" in bad.output


def test_key_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"name": "a", "roles": ["decide"], "sha256": "plaintext-key"}]}))
    with pytest.raises(ConfigError, match=r"keys\[0\] \(a\): 'sha256' must be 64"):
        KeyRing.load(path)
    with pytest.raises(ConfigError, match="promolift api-key NAME"):
        KeyRing.load(tmp_path / "none.json")
    add_key(tmp_path / "ok.json", "a", ["admin"])
    assert KeyRing.load(tmp_path / "ok.json").identify("") is None


def test_serve_refuses_to_run_without_keys_unless_insecure(tmp_path):
    r = runner.invoke(app, ["serve", str(tmp_path)])
    assert r.exit_code == 2 and "--api-keys" in r.output


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMOLIFT_SERVE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("PROMOLIFT_SERVE_BUDGET", "12.5")
    s = ServeSettings()
    assert s.model_dir == tmp_path and s.budget == 12.5 and s.max_batch == 1000


def test_prices_from_a_plan_summary():
    arms = ["control", "a", "b"]
    summary = {"shadow_price": 0.5, "contact_price": 0.1, "arm_prices": {"b": 0.2},
               "constraints": {"arm_caps": {"b": 3}, "min_roi": None}}
    p = Prices.from_plan(summary, arms)
    assert (p.shadow_price, p.contact_price) == (0.5, 0.1)
    np.testing.assert_array_equal(p.arm_prices, [0.0, 0.0, 0.2])
    # value - 0.5 cost - 0.1 - nu: a -> 1 - 0.5 - 0.1 = 0.4, b -> 1.2 - 0.1 - 0.1 - 0.2 = 0.8
    assert decide(np.array([[0, 1.0, 1.2]]), np.array([[0, 1.0, 0.2]]), p).tolist() == [2]
    with pytest.raises(ConfigError, match="no 'arm_prices'"):
        Prices.from_plan({**summary, "arm_prices": None}, arms)
    with pytest.raises(ConfigError, match="arm 'z'"):
        Prices.from_plan({**summary, "arm_prices": {"z": 1.0}}, arms)
