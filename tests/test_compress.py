"""Serving formats of the deep model (fp32 batched, int8, ONNX, int8 ONNX) and bundle conversion.

One small deep model is trained inside a bundle once per module; it is exported to ONNX once
(~10-20 s, the torch.export-based exporter) and every copy of it shares that export.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from promolift.bundle import ModelBundle  # noqa: E402
from promolift.cli import ServingFormat, _epoch_progress, app  # noqa: E402
from promolift.config import CampaignConfig  # noqa: E402
from promolift.data import load_campaign  # noqa: E402
from promolift.datasets.simulator import campaign_config, make_campaign  # noqa: E402
from promolift.errors import BundleError, ConfigError  # noqa: E402
from promolift.models import compress, load_model, make_model  # noqa: E402
from promolift.models.deep import SERVING_FORMATS, DeepModel  # noqa: E402
from promolift.train import train  # noqa: E402

needs_onnx = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("onnxruntime", "onnx", "onnxscript")),
    reason="needs onnxruntime, onnx and onnxscript (the 'onnx' extra)",
)
TINY = dict(d_token=16, n_layers=1, n_heads=2, max_epochs=3, lr=3e-3, batch_size=256, patience=2)
# Stated tolerances vs fp32 on this small model: max |difference| of a probability, and of
# spend relative to its mean prediction (measured: onnx ~1e-7; int8 ~3e-3 and ~1%).
TOLERANCE = {"onnx": (1e-5, 1e-5), "int8": (0.02, 0.05), "onnx-int8": (0.02, 0.05)}
runner = CliRunner()


@pytest.fixture
def tiny_deep(monkeypatch):
    """Make ``train`` fit the deep kind with a tiny network (fast), whatever else it passes."""
    import promolift.train as train_module

    def make(kind, **params):
        return make_model(kind, **{**params, **(TINY if kind == "deep" else {})})

    monkeypatch.setattr(train_module, "make_model", make)


@pytest.fixture(scope="module")
def sim():
    return make_campaign(2200, random_state=2)


@pytest.fixture(scope="module")
def config(sim):
    raw = campaign_config(sim)
    raw["model"] = {"kinds": ["constant", "deep"], "n_folds": 2}
    return CampaignConfig.from_dict(raw)


@pytest.fixture(scope="module")
def data(sim, config):
    return load_campaign(sim.frame, config)


@pytest.fixture(scope="module")
def bundle(config, data):
    with pytest.MonkeyPatch.context() as mp:
        import promolift.train as train_module

        mp.setattr(train_module, "make_model",
                   lambda kind, **p: make_model(kind, **{**p, **(TINY if kind == "deep" else {})}))
        return train(config, data.subset(np.arange(1400)))


@pytest.fixture(scope="module")
def model(bundle):
    return bundle.models["deep"]


@pytest.fixture(scope="module")
def X(bundle, data):
    return bundle.encoder.transform(data.X.iloc[1400:])


@pytest.fixture(scope="module")
def fp32(model, X):
    return model.predict(X)


@pytest.fixture(scope="module")
def onnx_ready(model):
    """Export once; copies of ``model`` share the cached ONNX files."""
    model._onnx_bytes("onnx")
    return model


def _as(model, fmt):
    return copy.copy(model).set_params(serving_format=fmt)


# -- fp32 serving path -------------------------------------------------------------------------


def test_batched_predict_equals_the_per_arm_reference(model, X, fp32):
    reference = copy.copy(model)
    reference._predict = reference._predict_unbatched  # the original: rebuild + loop over arms
    ref = reference.predict(X)
    assert ref.shape == fp32.shape == (len(X), 3, 3)
    # same network outputs; the float64 sigmoid/exp in numpy may differ from torch's in the last bit
    np.testing.assert_allclose(fp32, ref, rtol=1e-12, atol=1e-15)


def test_network_is_built_once_and_rebuilt_after_refit(model, data, bundle):
    m = copy.copy(model)
    first = m._runner()
    assert m._runner() is first
    m.set_params(n_threads=1)
    assert m._runner() is not first
    Xtr = bundle.encoder.transform(data.X.iloc[:500])
    refit = DeepModel(**{**TINY, "max_epochs": 1}).fit(Xtr, data.Y[:500], treatment=data.treatment[:500])
    assert refit._runner() is refit._runner()
    assert refit._runner() is not first


def test_predict_batches_larger_than_the_chunk(model, X, fp32):
    from promolift.models import deep

    big = X.iloc[np.arange(len(X)).repeat(6)]  # 4,800 rows > the 4,096-row chunk
    assert deep._PREDICT_BATCH < len(big)
    np.testing.assert_array_equal(model.predict(big)[::6], fp32)
    # a batch of one: float32 GEMM kernels depend on the batch size, so equal to rounding only
    np.testing.assert_allclose(model.predict(X.iloc[[7]]), fp32[[7]], rtol=1e-5)


def test_deep_fit_stays_reproducible(data, bundle):
    Xtr = bundle.encoder.transform(data.X.iloc[:800])
    a, b = (DeepModel(**TINY).fit(Xtr, data.Y[:800], treatment=data.treatment[:800]) for _ in range(2))
    assert a.n_epochs_ == b.n_epochs_
    for k in a.state_dict_:
        np.testing.assert_array_equal(a.state_dict_[k], b.state_dict_[k])


# -- compressed formats ------------------------------------------------------------------------


def test_serving_format_is_validated(model, X):
    with pytest.raises(ValueError, match="serving_format"):
        DeepModel(serving_format="fp16").fit(X.iloc[:50], np.zeros(50), treatment=np.arange(50) % 2)
    assert SERVING_FORMATS == tuple(f.value for f in ServingFormat)


def test_int8_torch_quantizes_linear_layers_within_tolerance(model, X, fp32):
    m = _as(model, "int8")
    pred = m.predict(X)
    modules = list(m._runner().net.modules())
    quantized = [x for x in modules if type(x).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    float_linear = [x for x in modules if type(x) is torch.nn.Linear]
    heads = len(m.outcome_heads_) * (m.n_arms_ if m.arm_heads == "separate" else 1)
    assert len(quantized) == 2 * m.n_layers + 2 * heads and not float_linear  # feed-forward + 2 per head
    _assert_close(pred, fp32, "int8")
    assert np.abs(pred - fp32).max() > 0  # really quantized


@needs_onnx
@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8"])
def test_onnx_formats_within_tolerance(onnx_ready, X, fp32, fmt):
    pred = _as(onnx_ready, fmt).predict(X)
    _assert_close(pred, fp32, fmt)
    if fmt == "onnx-int8":
        import onnx

        ops = {n.op_type for n in onnx.load_from_string(onnx_ready._onnx_bytes(fmt)).graph.node}
        assert "MatMulInteger" in ops and np.abs(pred - fp32).max() > 1e-5


def _assert_close(pred, fp32, fmt):
    prob_tol, spend_tol = TOLERANCE[fmt]
    assert np.abs(pred[..., :2] - fp32[..., :2]).max() < prob_tol
    assert np.abs(pred[..., 2] - fp32[..., 2]).max() < spend_tol * fp32[..., 2].mean()


@pytest.mark.parametrize("fmt", SERVING_FORMATS)
def test_each_format_round_trips_through_save_and_load(onnx_ready, X, tmp_path, fmt):
    if fmt.startswith("onnx"):
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    m = _as(onnx_ready, fmt)
    pred = m.predict(X)
    m.save(tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    files = {f["name"]: f for f in manifest["files"]}
    if fmt.startswith("onnx"):
        data = (tmp_path / "network.onnx").read_bytes()
        assert files["network.onnx"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["artifacts"] == {"onnx": "network.onnx"}
    else:
        assert not (tmp_path / "network.onnx").exists() and manifest["artifacts"] == {}
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pt"))
    same = load_model(tmp_path)
    assert same.serving_format == fmt
    np.testing.assert_array_equal(same.predict(X), pred)  # int8: re-quantized identically


@needs_onnx
def test_onnx_model_predicts_without_torch_after_load(onnx_ready, tmp_path):
    import subprocess
    import sys

    _as(onnx_ready, "onnx").save(tmp_path)
    code = (
        "import sys\n"
        "class Block:\n"  # any torch import now fails
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, pandas as pd\n"
        "from promolift.models import load_model\n"
        f"m = load_model({str(tmp_path)!r})\n"
        "X = pd.DataFrame({c: np.zeros(3) for c in m.feature_names_in_})\n"
        "for c, cats in m.categories_.items(): X[c] = pd.Categorical([cats[0]] * 3, categories=cats)\n"
        "p = m.predict(X); assert p.shape == (3, m.n_arms_, 3) and np.isfinite(p).all()\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pickle_drops_the_cached_network(model, X, fp32):
    m = copy.copy(model)
    m.predict(X.iloc[:5])
    again = pickle.loads(pickle.dumps(m))
    assert "_serving" not in again.__dict__
    np.testing.assert_array_equal(again.predict(X), fp32)


# -- integrity ---------------------------------------------------------------------------------


@needs_onnx
def test_corrupt_onnx_file_is_refused(onnx_ready, X, bundle, tmp_path):
    path = compress.compress_bundle(bundle, "onnx").save(tmp_path / "b")
    onnx_file = path / "models" / "deep" / "network.onnx"
    good = onnx_file.read_bytes()
    onnx_file.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    with pytest.raises(BundleError, match="network.onnx' does not match its checksum"):
        ModelBundle.load(path)
    with pytest.raises(BundleError, match="SHA-256 does not match model.json"):
        load_model(path / "models" / "deep")
    # a garbage file whose checksum was updated too still cannot run
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    _as(onnx_ready, "onnx").save(model_dir)
    garbage = b"not an onnx model"
    (model_dir / "network.onnx").write_bytes(garbage)
    manifest = json.loads((model_dir / "model.json").read_text())
    for f in manifest["files"]:
        if f["name"] == "network.onnx":
            f["sha256"] = hashlib.sha256(garbage).hexdigest()
    (model_dir / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="onnxruntime cannot load"):
        load_model(model_dir).predict(X)


def test_model_json_without_its_onnx_file_is_refused(model, tmp_path):
    _as(model, "fp32").save(tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    manifest["params"]["serving_format"] = "onnx"
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="lacks an ONNX file"):
        load_model(tmp_path)


def test_missing_onnxruntime_gives_an_honest_hint(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    with pytest.raises(ImportError, match=r'pip install "promolift\[onnx\]"'):
        compress.check_onnx_support()


# -- bundles and the CLI -----------------------------------------------------------------------


def test_compress_bundle_needs_a_deep_model_and_a_known_format(bundle):
    with pytest.raises(ConfigError, match="unknown serving format 'int4'"):
        compress.compress_bundle(bundle, "int4")
    no_deep = compress.dataclasses.replace(bundle, models={"constant": bundle.models["constant"]})
    with pytest.raises(ConfigError, match="applies to the 'deep' model kind"):
        compress.compress_bundle(no_deep, "int8")
    assert bundle.models["deep"].serving_format == "fp32"  # the input is left unchanged


@needs_onnx
def test_cli_compress_rewrites_the_bundle(onnx_ready, bundle, data, tmp_path):
    path = compress.compress_bundle(bundle, "onnx").save(tmp_path / "b")
    X = data.X.iloc[1400:]
    fp32 = bundle.predict_kinds(X, ["deep"])["deep"]
    r = runner.invoke(app, ["compress", str(path), "--format", "onnx-int8"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["serving_formats"] == {"deep": "onnx-int8"}
    assert "models/deep/network.onnx" in manifest["files"]
    int8 = ModelBundle.load(path)
    assert int8.models["deep"].serving_format == "onnx-int8"
    assert np.abs(int8.predict_kinds(X, ["deep"])["deep"] - fp32).max() < 0.05 * fp32[..., 2].mean()
    r = runner.invoke(app, ["compress", str(path), "--format", "fp32", "--out", str(tmp_path / "back")])
    assert r.exit_code == 0, r.output
    back = ModelBundle.load(tmp_path / "back")
    assert not (tmp_path / "back" / "models" / "deep" / "network.onnx").exists()
    np.testing.assert_array_equal(back.predict_kinds(X, ["deep"])["deep"], fp32)  # fp32 weights kept


def test_cli_train_serving_format(tiny_deep, sim, config, tmp_path):
    sim.frame.iloc[:1000].to_csv(tmp_path / "train.csv", index=False)
    raw = config.to_toml_dict()
    raw["data"]["path"] = "train.csv"
    (tmp_path / "campaign.toml").write_text(_to_toml(raw))
    r = runner.invoke(app, ["train", str(tmp_path / "campaign.toml"), "--out", str(tmp_path / "m"),
                            "--serving-format", "int8"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["serving_formats"] == {"deep": "int8"}
    assert ModelBundle.load(tmp_path / "m").models["deep"].serving_format == "int8"
    r = runner.invoke(app, ["train", str(tmp_path / "campaign.toml"), "--out", str(tmp_path / "x"),
                            "--serving-format", "fp16"])
    assert r.exit_code == 2 and "fp16" in r.output
    raw["model"]["kinds"] = ["constant"]
    (tmp_path / "no_deep.toml").write_text(_to_toml(raw))
    r = runner.invoke(app, ["train", str(tmp_path / "no_deep.toml"), "--out", str(tmp_path / "y"),
                            "--serving-format", "onnx"])
    assert r.exit_code == 2 and "applies to the 'deep' model kind" in r.output
    assert not (tmp_path / "y").exists()


# -- training progress -------------------------------------------------------------------------


def test_each_epoch_is_logged_and_reaches_the_progress_bar(data, bundle, caplog):
    Xtr = bundle.encoder.transform(data.X.iloc[:600])
    shown: list[str] = []
    with caplog.at_level(logging.INFO, logger="promolift.models.deep"), _epoch_progress(shown.append):
        model = DeepModel(**TINY).fit(Xtr, data.Y[:600], treatment=data.treatment[:600])
    records = [r for r in caplog.records if r.name == "promolift.models.deep"]
    assert [r.epoch for r in records] == list(range(1, model.n_epochs_ + 1))
    assert all(r.max_epochs == TINY["max_epochs"] and np.isfinite(r.val_loss) for r in records)
    assert shown == [r.getMessage() for r in records]
    assert shown[0].startswith(f"deep epoch 1/{TINY['max_epochs']}: train loss")
    assert not logging.getLogger("promolift.models.deep").handlers  # handler removed


def _to_toml(raw: dict) -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines: list[str] = []

    def section(name, d):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if scalars:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {val(v)}" for k, v in scalars.items() if v is not None)
        for k, v in d.items():
            if isinstance(v, dict):
                section(f"{name}.{k}", v)

    for name, d in raw.items():
        section(name, d)
    return "\n".join(lines) + "\n"
