import pytest

from promolift.config import CampaignConfig, load_config
from promolift.errors import ConfigError


def test_good_config_parses_arms_in_order(configs_dir):
    cfg = load_config(configs_dir / "good.toml")
    assert cfg.arm_names == ["control", "email", "coupon10", "freeship"]
    assert cfg.outcome_names == ["conversion", "spend"]
    assert cfg.data.path == (configs_dir / "log.csv").resolve()
    eco = cfg.arm_economics()
    assert eco[0].contact_cost == 0 and eco[2].discount_rate == 0.10 and eco[3].cost_per_conversion == 6.0


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("wrong_unknown_key", r"data\.treatmnt: unknown key\. Did you mean 'treatment'\?"),
        ("wrong_arm_key", r"arms\.email\.contct_cost: unknown key\. Did you mean 'contact_cost'\?"),
        ("wrong_value_outcome", r"value_outcome = 'spnd' is not in \[outcomes\].*Did you mean 'spend'\?"),
        ("wrong_negative_cost", r"arms\.email\.contact_cost: Input should be greater than or equal to 0"),
        ("wrong_no_arms", r"no \[arms\.NAME\] table"),
        ("wrong_binary_value", r"value_outcome 'conversion' must be a continuous outcome"),
        ("wrong_not_toml", r"not valid TOML"),
    ],
)
def test_wrong_configs_name_the_problem(configs_dir, name, match):
    with pytest.raises(ConfigError, match=match):
        load_config(configs_dir / f"{name}.toml")


def test_every_problem_reported_at_once():
    with pytest.raises(ConfigError, match=r"2 problem\(s\)") as exc:
        CampaignConfig.from_dict({"data": {"idd": "x"}, "arms": {"a": {"contact_cost": -1}}})
    assert "idd" in str(exc.value) and "contact_cost" in str(exc.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/campaign.toml")


def test_round_trip_through_dict(configs_dir):
    cfg = load_config(configs_dir / "good.toml")
    assert CampaignConfig.from_dict(cfg.to_toml_dict()) == cfg
