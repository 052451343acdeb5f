import numpy as np
import pandas as pd
import pytest

from promolift.config import CampaignConfig
from promolift.data import FeatureEncoder, data_quality, load_campaign, load_customers
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.errors import DataError


@pytest.fixture
def config():
    return CampaignConfig.from_dict({
        "data": {"id": "customer_id", "treatment": "treatment", "control": "control"},
        "outcomes": {"conversion": "binary", "spend": "continuous"},
        "arms": {"email": {"contact_cost": 0.1}},
    })


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 600
    conv = rng.random(n) < 0.1
    return pd.DataFrame({
        "customer_id": np.arange(n),
        "treatment": np.where(np.arange(n) % 2, "email", "control"),
        "age": rng.normal(40, 10, n),
        "channel": rng.choice(["Web", "Phone"], n),
        "conversion": conv.astype(int),
        "spend": np.where(conv, rng.gamma(2, 50, n), 0.0),
    })


def test_load_valid(frame, config):
    d = load_campaign(frame, config)
    assert d.arms == ("control", "email")
    assert list(d.X.columns) == ["age", "channel"]
    np.testing.assert_array_equal(d.treatment, np.arange(600) % 2)
    np.testing.assert_allclose(d.Y[:, 1], frame["spend"])
    assert len(d.fingerprint) == 64


def test_csv_and_parquet_agree(frame, config, tmp_path):
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    a = load_campaign(tmp_path / "log.csv", config)
    b = load_campaign(tmp_path / "log.parquet", config)
    np.testing.assert_allclose(a.Y, b.Y)
    np.testing.assert_array_equal(a.treatment, b.treatment)


def test_misspelt_column_suggests_closest(frame, config):
    with pytest.raises(DataError, match=r"'spend' Did you mean 'spnd'\?"):
        load_campaign(frame.rename(columns={"spend": "spnd"}), config)


def test_unknown_arm(frame, config):
    frame.loc[5, "treatment"] = "emial"
    with pytest.raises(DataError, match=r"arm\(s\) not in campaign.toml: 'emial' \(first at data row 6\).*"
                                        r"Did you mean 'email'\?"):
        load_campaign(frame, config)


def test_absent_arm(frame):
    cfg = CampaignConfig.from_dict({"outcomes": {"conversion": "binary", "spend": "continuous"},
                                    "arms": {"email": {}, "sms": {}}})
    with pytest.raises(DataError, match=r"arm\(s\) 'sms' are in campaign.toml but have no rows"):
        load_campaign(frame, cfg)


def test_control_missing(frame, config):
    frame["treatment"] = "email"
    with pytest.raises(DataError, match=r"control arm 'control' .* never appears"):
        load_campaign(frame, config)


def test_non_numeric_outcome(frame, config):
    frame["spend"] = frame["spend"].astype(object)
    frame.loc[3, "spend"] = "12,50"
    with pytest.raises(DataError, match=r"outcome column 'spend' is not numeric: '12,50' at data row 4"):
        load_campaign(frame, config)


def test_binary_outcome_out_of_range(frame, config):
    frame.loc[7, "conversion"] = 2
    with pytest.raises(DataError, match=r"binary outcome 'conversion' has values other than 0/1.*data row 8"):
        load_campaign(frame, config)


def test_duplicate_ids(frame, config):
    frame.loc[10, "customer_id"] = 3
    with pytest.raises(DataError, match=r"1 duplicate id\(s\), e.g. 3 at data rows 4, 11"):
        load_campaign(frame, config)


def test_too_few_rows_per_arm(frame, config):
    with pytest.raises(DataError, match=r"too few rows to learn from: 'control' has 300, 'email' has 300"):
        load_campaign(frame, config, min_rows_per_arm=400)


def test_empty_file(tmp_path, config):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: the file is empty"):
        load_campaign(tmp_path / "empty.csv", config)
    (tmp_path / "header.csv").write_text("customer_id,treatment\n")
    with pytest.raises(DataError, match=r"header but no data rows"):
        load_campaign(tmp_path / "header.csv", config)


def test_unknown_file_type(tmp_path, config):
    (tmp_path / "log.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unknown file type '.xlsx'"):
        load_campaign(tmp_path / "log.xlsx", config)


def test_encoder_missing_and_unseen_values(frame, config):
    d = load_campaign(frame, config)
    enc = FeatureEncoder().fit(d.X)
    assert enc.numeric_ == ["age"] and enc.categories_ == {"channel": ["Phone", "Web"]}
    new = pd.DataFrame({"age": [np.nan, "31"], "channel": ["Fax", None]})
    out = enc.transform(new)
    assert np.isnan(out["age"][0]) and out["age"][1] == 31.0
    assert out["channel"].isna().all()
    again = FeatureEncoder.from_dict(enc.to_dict()).transform(d.X)
    pd.testing.assert_frame_equal(again, enc.transform(d.X))


def test_encoder_errors(frame, config):
    enc = FeatureEncoder().fit(load_campaign(frame, config).X)
    with pytest.raises(DataError, match=r"missing feature column\(s\) the model was trained on: channel"):
        enc.transform(frame[["age"]])
    bad = frame[["age", "channel"]].astype({"age": object})
    bad.loc[2, "age"] = "forty"
    with pytest.raises(DataError, match=r"feature 'age' must be numeric but has 'forty' at data row 3"):
        enc.transform(bad)


def test_encoder_matrix_matches_transform_codes(frame, config):
    """The predicting matrix holds the category's index where transform holds the category."""
    enc = FeatureEncoder().fit(load_campaign(frame, config).X)
    new = pd.DataFrame({"age": [np.nan, 31.0, 40.0], "channel": ["Web", "Fax", None]})
    out = enc.matrix(new)
    assert out.shape == (3, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 0], [np.nan, 31.0, 40.0])
    np.testing.assert_array_equal(out[:, 1], [1.0, np.nan, np.nan])  # Phone=0, Web=1
    codes = enc.transform(new)["channel"].cat.codes.to_numpy()
    np.testing.assert_array_equal(np.where(codes < 0, np.nan, codes), out[:, 1])
    # a few JSON-like records, a large frame and a category column all give the same codes
    records = {"age": [None, 31, 40], "channel": ["Web", "Fax", None]}
    np.testing.assert_array_equal(enc.matrix(records), out)
    big = pd.concat([new] * 50, ignore_index=True)
    np.testing.assert_array_equal(enc.matrix(big), np.tile(out, (50, 1)))
    as_cat = new.assign(channel=pd.Categorical(new["channel"], categories=["Web", "Fax", "Phone"]))
    np.testing.assert_array_equal(enc.matrix(as_cat), out)
    with pytest.raises(DataError, match=r"feature 'age' must be numeric but has 'x' at data row 2"):
        enc.matrix({"age": [1.0, "x", None], "channel": ["Web"] * 3})
    with pytest.raises(DataError, match=r"missing feature column\(s\) the model was trained on: channel"):
        enc.matrix({"age": [1.0]})


def test_load_customers_ignores_extra_columns(frame):
    ids, X = load_customers(frame, id_column="customer_id", features=["age"])
    assert list(X.columns) == ["age"] and len(ids) == 600


def test_hillstrom_quality():
    d = load_campaign(load_hillstrom(), hillstrom_config())
    q = data_quality(d)
    assert q.n_rows == 64000 and q.srm_ok
    assert q.arms["rows"].tolist() == [21306, 21307, 21387]
    # published arm means (spend): no e-mail 0.6528, men's 1.4226, women's 1.0772
    np.testing.assert_allclose(q.arms["mean_spend"], [0.652789, 1.422617, 1.077202], atol=1e-6)


def test_sample_ratio_mismatch_detected(frame, config):
    keep = (frame["treatment"] == "email") | (np.arange(len(frame)) % 4 == 0)
    d = load_campaign(frame[keep].reset_index(drop=True), config, min_rows_per_arm=10)
    q = data_quality(d)
    assert not q.srm_ok and "sample-ratio mismatch" in q.warnings()[0]
