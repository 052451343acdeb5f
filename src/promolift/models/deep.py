"""An opt-in deep multi-task, multi-treatment response model (PyTorch, CPU).

:class:`DeepModel` (kind ``"deep"``) encodes every customer with a small FT-Transformer
(one token per feature plus a CLS token) and predicts every arm with treatment-aware heads:
one MLP head per arm × outcome on the CLS representation (or, ``arm_heads="shared"``, an arm
embedding concatenated with it and fed to one head per outcome). All arms and outcomes are
learned jointly (multi-task):

- binary outcomes: a logit, trained with binary cross-entropy;
- non-negative continuous outcomes (e.g. zero-inflated spend): a hurdle,
  ``E[y] = P(y > 0) * E[y | y > 0]``, trained with BCE on ``y > 0`` plus a Gamma-type
  deviance (log link) on the positive rows, so ``E[y | y > 0]`` is a mean, not a median;
- other continuous outcomes: squared error on the standardised outcome;
- optionally an ESMM-style funnel ``chain=(i, j)`` of two binary outcomes (outcome ``j``
  only happens after outcome ``i``, e.g. visit -> conversion):
  ``P(j) = P(i) * P(j | i)``, with the BCE of ``j`` taken on the product over all rows.

PyTorch is imported only inside methods: importing :mod:`promolift.models` never imports
torch, and the model is saved as JSON arrays like every other kind (no pickle).

Serving: the network is built once per model instance (cached, never saved) and scores all
arms of a batch in one pass. ``serving_format`` chooses how it runs: ``"fp32"`` (PyTorch),
``"int8"`` (PyTorch dynamic int8 Linear layers, re-quantized from the fp32 weights on load),
``"onnx"`` or ``"onnx-int8"`` (an ONNX file run by onnxruntime, stored beside ``model.json``
and checksummed; predicting needs no torch). See :mod:`promolift.models.compress`.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from promolift.errors import BundleError
from promolift.models.base import Interval, Options, ResponseModel, TrainingData

__all__ = ["SERVING_FORMATS", "DeepModel"]

_PREDICT_BATCH = 4096
SERVING_FORMATS: tuple[str, ...] = ("fp32", "int8", "onnx", "onnx-int8")
"""How a fitted :class:`DeepModel` runs its network when predicting (``serving_format``)."""
_ONNX_FILE = "network.onnx"

_log = logging.getLogger(__name__)


class _OutcomePair:
    """Constraint: ``None`` or a pair of two distinct outcome indices (tuple or list)."""

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, tuple | list)
            and len(value) == 2
            and all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 0 for v in value)
            and value[0] != value[1]
        )

    def __str__(self) -> str:
        return "a pair (i, j) of two distinct outcome indices"


@contextmanager
def _torch_settings(n_threads: int):
    """Deterministic algorithms and a fixed thread count, restored afterwards."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(n_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield torch
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def _build_network(
    *,
    n_numeric: int,
    cardinalities: list[int],
    n_arms: int,
    head_sizes: list[int],
    d_token: int,
    n_layers: int,
    n_heads: int,
    dropout: float,
    arm_heads: str = "separate",
):
    """The torch module (built lazily so torch is imported only when needed)."""
    import torch
    from torch import nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = d_token
            self.num_weight = nn.Parameter(torch.randn(max(n_numeric, 0), d) * 0.1)
            self.num_bias = nn.Parameter(torch.zeros(max(n_numeric, 0), d))
            self.num_missing = nn.Parameter(torch.randn(max(n_numeric, 0), d) * 0.1)
            # one embedding table for all categorical features; row 0 of each = missing/unseen
            offsets = np.concatenate([[0], np.cumsum([c + 1 for c in cardinalities])])
            self.register_buffer(
                "cat_offsets", torch.as_tensor(offsets[:-1], dtype=torch.long), persistent=False
            )
            self.cat_embedding = nn.Embedding(max(int(offsets[-1]), 1), d)
            nn.init.normal_(self.cat_embedding.weight, std=0.1)
            self.cat_bias = nn.Parameter(torch.zeros(len(cardinalities), d))
            self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.1)
            layer = nn.TransformerEncoderLayer(
                d_model=d, nhead=n_heads, dim_feedforward=2 * d, dropout=dropout,
                activation="gelu", batch_first=True, norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(
                layer, num_layers=n_layers, enable_nested_tensor=False
            )
            self.norm = nn.LayerNorm(d)
            self.n_arms = n_arms
            self.shared = arm_heads == "shared"

            def mlp(width: int, size: int):
                return nn.Sequential(nn.Linear(width, 2 * d), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(2 * d, size))

            if self.shared:  # the arm's embedding beside the customer's, one head per outcome
                self.arm_embedding = nn.Embedding(n_arms, d)
                nn.init.normal_(self.arm_embedding.weight, std=0.1)
                self.heads = nn.ModuleList(mlp(2 * d, size) for size in head_sizes)
            else:  # one head per arm x outcome on the customer's representation
                self.arm_heads = nn.ModuleList(
                    nn.ModuleList(mlp(d, size) for size in head_sizes) for _ in range(n_arms)
                )

        def encode(self, x_num, x_miss, x_cat):
            tokens = [self.cls.expand(x_num.shape[0], -1, -1)]
            if x_num.shape[1]:
                value = x_num[:, :, None] * self.num_weight + self.num_bias
                tokens.append(torch.where(x_miss[:, :, None], self.num_missing, value))
            if x_cat.shape[1]:
                tokens.append(self.cat_embedding(x_cat + self.cat_offsets) + self.cat_bias)
            h = self.encoder(torch.cat(tokens, dim=1))
            return self.norm(h[:, 0])

        def heads_for(self, h, arm):
            """Per outcome, the head outputs of each row under its own ``arm``."""
            if self.shared:
                z = torch.cat([h, self.arm_embedding(arm)], dim=1)
                return [head(z) for head in self.heads]
            rows = torch.arange(h.shape[0])
            return [torch.stack([heads[m](h) for heads in self.arm_heads], dim=1)[rows, arm]
                    for m in range(len(head_sizes))]

        def forward(self, x_num, x_miss, x_cat):
            """Raw head outputs of every arm in one pass: (n, K, sum of head sizes)."""
            h = self.encode(x_num, x_miss, x_cat)
            n, K = h.shape[0], self.n_arms
            if not self.shared:
                return torch.stack([torch.cat([head(h) for head in heads], dim=1)
                                    for heads in self.arm_heads], dim=1)
            z = torch.cat(
                [h[:, None, :].expand(n, K, -1),
                 self.arm_embedding.weight[None, :, :].expand(n, K, -1)],
                dim=2,
            ).reshape(n * K, -1)
            return torch.cat([head(z) for head in self.heads], dim=1).reshape(n, K, -1)

    return _Net()


class DeepModel(ResponseModel):
    """Deep multi-task, multi-treatment response model (FT-Transformer + arm-aware heads).

    Opt-in: needs PyTorch (``pip install torch``). Runs on CPU; fits are reproducible
    (seeded, deterministic algorithms, fixed thread count).

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms K; ``None`` uses ``treatment.max() + 1``.
    chain : pair of int, default=None
        ESMM-style funnel ``(i, j)`` of two binary outcomes where ``j`` only happens after
        ``i`` (e.g. ``(0, 1)`` for visit -> conversion): ``P(j) = P(i) * P(j | i)``.
    max_epochs : int, default=30
    batch_size : int, default=512
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-5
    dropout : float, default=0.1
    d_token : int, default=32
        Token width; must be divisible by ``n_heads``.
    n_layers : int, default=2
        Transformer layers.
    n_heads : int, default=4
    arm_heads : {"separate", "shared"}, default="separate"
        Treatment-aware heads: ``"separate"`` gives every arm × outcome its own head on the
        shared customer representation; ``"shared"`` feeds an arm embedding beside it to one
        head per outcome. Separate is the default by measurement (README, "Each model kind
        alone"): on the simulator its uplift error is lower and its plans far more stable;
        on Hillstrom the two are within the noise.
    validation_fraction : float, default=0.2
        Share of rows held out for early stopping (on the validation loss).
    patience : int, default=4
        Epochs without validation improvement before stopping; the best epoch is kept.
    random_state : int, default=0
    n_threads : int, default=2
        Torch (and onnxruntime) CPU threads during fit and predict.
    serving_format : {"fp32", "int8", "onnx", "onnx-int8"}, default="fp32"
        How ``predict`` runs the fitted network: PyTorch fp32, PyTorch with dynamic int8
        Linear layers, or onnxruntime on an fp32 or dynamically int8-quantized ONNX export.
        Training is always fp32; changing it on a fitted model (``set_params``) converts it.
        The ONNX formats are saved as a checksummed ``network.onnx`` and need onnxruntime
        (``pip install "promolift[onnx]"``) but not torch to predict.

    Attributes
    ----------
    numeric_features_, categorical_features_ : list of str
        Feature order of the network's tokens.
    num_mean_, num_std_ : numpy.ndarray
        Standardisation of the numeric features (NaN -> 0 plus a missing token).
    cardinalities_ : list of int
        Number of categories of each categorical feature.
    outcome_heads_ : list of str
        ``"binary"``, ``"hurdle"`` or ``"gaussian"`` per outcome.
    y_scale_, y_shift_ : numpy.ndarray of shape (M,)
        Target scaling (hurdle: mean positive value; gaussian: mean and std).
    state_dict_ : dict of str to numpy.ndarray
        The network weights.
    n_epochs_ : int
        Epochs trained (including the patience epochs after the best one).
    best_epoch_ : int
        Epoch whose weights are kept (1-based).

    Notes
    -----
    ``propensity`` is not used: the model assumes a randomized experiment (arm shares may be
    unequal). On small data (~8,000 rows) ``lr=3e-3, batch_size=256`` converges in fewer
    epochs than the defaults.

    Each epoch is logged at INFO level on the ``promolift.models.deep`` logger, with the
    fields ``epoch``, ``max_epochs``, ``train_loss`` and ``val_loss`` on the record (the CLI
    shows them on its progress bar; ``logging.basicConfig(level="INFO")`` prints them).
    """

    _kind: ClassVar[str] = "deep"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_arms": [None, Interval(Integral, 2, None)],
        "chain": [None, _OutcomePair()],
        "max_epochs": [Interval(Integral, 1, None)],
        "batch_size": [Interval(Integral, 1, None)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "d_token": [Interval(Integral, 1, None)],
        "n_layers": [Interval(Integral, 1, None)],
        "n_heads": [Interval(Integral, 1, None)],
        "arm_heads": [Options(("shared", "separate"))],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "patience": [Interval(Integral, 1, None)],
        "random_state": [Interval(Integral, 0, 2**32 - 1)],
        "n_threads": [Interval(Integral, 1, None)],
        "serving_format": [Options(SERVING_FORMATS)],
    }
    _model_attrs: ClassVar[tuple[str, ...]] = (
        "numeric_features_",
        "categorical_features_",
        "num_mean_",
        "num_std_",
        "cardinalities_",
        "outcome_heads_",
        "y_scale_",
        "y_shift_",
        "state_dict_",
        "n_epochs_",
        "best_epoch_",
    )

    def __init__(
        self,
        *,
        n_arms: int | None = None,
        chain: tuple[int, int] | None = None,
        max_epochs: int = 30,
        batch_size: int = 512,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        dropout: float = 0.1,
        d_token: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        arm_heads: str = "separate",
        validation_fraction: float = 0.2,
        patience: int = 4,
        random_state: int = 0,
        n_threads: int = 2,
        serving_format: str = "fp32",
    ) -> None:
        self.n_arms = n_arms
        self.chain = chain
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.d_token = d_token
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.arm_heads = arm_heads
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.n_threads = n_threads
        self.serving_format = serving_format

    # -- features ----------------------------------------------------------------------------

    def _arrays(
        self,
        X: pd.DataFrame | np.ndarray,
        numeric: list[str],
        categorical: list[str],
        mean: np.ndarray,
        std: np.ndarray,
        categories: dict[str, list[Any]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised numbers, their missing mask and category codes (0 = missing/unseen)
        from a training frame or the encoded matrix of :meth:`predict`."""
        n = len(X)
        if isinstance(X, np.ndarray):
            at = {c: j for j, c in enumerate(self.feature_names_in_)}
            raw = X[:, [at[c] for c in numeric]]
            cat = X[:, [at[c] for c in categorical]]
            codes = np.where(np.isnan(cat), 0, cat + 1).astype(np.int64)
        else:
            raw = np.column_stack([X[c].to_numpy(np.float64) for c in numeric]) if numeric else (
                np.zeros((n, 0))
            )
            codes = np.zeros((n, len(categorical)), dtype=np.int64)
            for j, c in enumerate(categorical):
                col = pd.Categorical(
                    np.asarray(X[c].astype(object), dtype=object), categories=categories[c]
                )
                codes[:, j] = col.codes.astype(np.int64) + 1
        miss = np.isnan(raw)
        z = np.where(miss, 0.0, (raw - mean) / std).astype(np.float32)
        return z, miss, codes

    def _network(self, n_numeric: int, cardinalities: list[int], n_arms: int, heads: list[str]):
        return _build_network(
            n_numeric=n_numeric,
            cardinalities=[int(c) for c in cardinalities],
            n_arms=int(n_arms),
            head_sizes=[2 if h == "hurdle" else 1 for h in heads],
            d_token=self.d_token,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            dropout=self.dropout,
            arm_heads=self.arm_heads,
        )

    # -- fit ---------------------------------------------------------------------------------

    def _check_chain(self, data: TrainingData) -> tuple[int, int] | None:
        if self.chain is None:
            return None
        i, j = (int(v) for v in self.chain)
        M = data.n_outcomes
        if i >= M or j >= M:
            raise ValueError(f"DeepModel: chain={self.chain!r} refers to outcome(s) >= M = {M}.")
        if data.outcome_types[i] != "binary" or data.outcome_types[j] != "binary":
            raise ValueError(f"DeepModel: chain={self.chain!r} must name two binary outcomes.")
        if (data.Y[:, j] > data.Y[:, i]).any():
            raise ValueError(
                f"DeepModel: chain={self.chain!r}, but outcome {j} is 1 on rows where "
                f"outcome {i} is 0; a funnel step can only happen after the previous one."
            )
        return i, j

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        if self.d_token % self.n_heads:
            raise ValueError(
                f"DeepModel: d_token={self.d_token} must be divisible by n_heads={self.n_heads}."
            )
        chain = self._check_chain(data)
        X, Y = data.X, data.Y
        categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        numeric = [c for c in X.columns if c not in set(categorical)]
        categories = {c: X[c].cat.categories.tolist() for c in categorical}
        raw = np.column_stack([X[c].to_numpy(np.float64) for c in numeric]) if numeric else (
            np.zeros((len(X), 0))
        )
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(raw, axis=0)) if numeric else np.zeros(0)
            std = np.nan_to_num(np.nanstd(raw, axis=0)) if numeric else np.zeros(0)
        std = np.where(std > 1e-12, std, 1.0)
        z, miss, codes = self._arrays(X, numeric, categorical, mean, std, categories)

        heads, scale, shift = [], np.ones(data.n_outcomes), np.zeros(data.n_outcomes)
        for m, t in enumerate(data.outcome_types):
            y = Y[:, m]
            if t == "binary":
                heads.append("binary")
            elif (y >= 0).all():
                heads.append("hurdle")
                pos = y[y > 0]
                scale[m] = pos.mean() if pos.size else 1.0
            else:
                heads.append("gaussian")
                shift[m], scale[m] = y.mean(), (y.std() if y.std() > 0 else 1.0)
        fitted: dict[str, Any] = {
            "numeric_features_": numeric,
            "categorical_features_": categorical,
            "num_mean_": mean,
            "num_std_": std,
            "cardinalities_": [len(categories[c]) for c in categorical],
            "outcome_heads_": heads,
            "y_scale_": scale,
            "y_shift_": shift,
        }
        Yt = ((Y - shift) / scale).astype(np.float32)
        n = len(X)
        rng = np.random.default_rng(self.random_state)
        perm = rng.permutation(n)
        n_val = min(max(int(round(self.validation_fraction * n)), 1), n - 1)
        val, train = perm[:n_val], perm[n_val:]

        with _torch_settings(self.n_threads) as torch:
            torch.manual_seed(self.random_state)
            net = self._network(len(numeric), fitted["cardinalities_"], data.n_arms, heads)
            tensors = [
                torch.from_numpy(z), torch.from_numpy(miss), torch.from_numpy(codes),
                torch.from_numpy(data.treatment), torch.from_numpy(Yt),
            ]
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            gen = torch.Generator().manual_seed(self.random_state)
            train_t = torch.from_numpy(train)
            val_t = torch.from_numpy(val)
            best, best_state, best_epoch, bad, epoch = math.inf, None, 0, 0, 0
            for epoch in range(1, self.max_epochs + 1):
                net.train()
                order = train_t[torch.randperm(len(train_t), generator=gen)]
                train_total = 0.0
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    loss = self._loss(net, [t[idx] for t in tensors], heads, chain)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    train_total += float(loss.detach()) * len(idx)
                net.eval()
                with torch.no_grad():
                    total = 0.0
                    for start in range(0, len(val_t), _PREDICT_BATCH):
                        idx = val_t[start : start + _PREDICT_BATCH]
                        batch = [t[idx] for t in tensors]
                        total += float(self._loss(net, batch, heads, chain)) * len(idx)
                    val_loss = total / len(val_t)
                train_loss = train_total / len(order)
                _log.info(
                    "deep epoch %d/%d: train loss %.4f, validation loss %.4f",
                    epoch, self.max_epochs, train_loss, val_loss,
                    extra={"epoch": epoch, "max_epochs": self.max_epochs,
                           "train_loss": train_loss, "val_loss": val_loss},
                )
                if val_loss < best - 1e-6:
                    best, best_epoch, bad = val_loss, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    bad += 1
                    if bad >= self.patience:
                        break
            if best_state is None:  # validation loss was never finite
                best_state = net.state_dict()
                best_epoch = epoch
        fitted["state_dict_"] = {k: v.numpy().copy() for k, v in best_state.items()}
        fitted["n_epochs_"] = epoch
        fitted["best_epoch_"] = best_epoch
        return fitted

    @staticmethod
    def _loss(net, batch, heads: list[str], chain: tuple[int, int] | None):
        import torch
        import torch.nn.functional as F

        x_num, x_miss, x_cat, arm, y = batch
        out = net.heads_for(net.encode(x_num, x_miss, x_cat), arm)
        total = torch.zeros(())
        for m, (o, h) in enumerate(zip(out, heads, strict=True)):
            target = y[:, m]
            if chain is not None and m == chain[1]:
                # ESMM: P(j) = P(i) * P(j | i), BCE on the product over all rows
                log_p = F.logsigmoid(out[chain[0]][:, 0]) + F.logsigmoid(o[:, 0])
                log_q = torch.log1p(-torch.exp(log_p).clamp(max=1 - 1e-6))
                total = total - (target * log_p + (1 - target) * log_q).mean()
            elif h == "binary":
                total = total + F.binary_cross_entropy_with_logits(o[:, 0], target)
            elif h == "hurdle":
                positive = (target > 0).to(o.dtype)
                total = total + F.binary_cross_entropy_with_logits(o[:, 0], positive)
                eta = o[:, 1].clamp(-10, 10)
                # Gamma deviance with log link (mean-unbiased) on the positive rows, averaged
                # over all rows like the hurdle likelihood (averaging over the positives only
                # let the few spenders dominate the loss and early stopping)
                gamma = (target * torch.exp(-eta) + eta) * positive
                total = total + gamma.mean()
            else:
                total = total + F.mse_loss(o[:, 0], target)
        return total

    # -- predict -----------------------------------------------------------------------------

    def _features(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._arrays(
            X, list(self.numeric_features_), list(self.categorical_features_),
            np.asarray(self.num_mean_), np.asarray(self.num_std_), self.categories_,
        )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        z, miss, codes = self._features(X)
        run = self._runner()
        raw = np.concatenate(
            [run(z[s:s + _PREDICT_BATCH], miss[s:s + _PREDICT_BATCH], codes[s:s + _PREDICT_BATCH])
             for s in range(0, len(X), _PREDICT_BATCH)]
        )
        return self._postprocess(raw)

    def _head_sizes(self) -> list[int]:
        return [2 if h == "hurdle" else 1 for h in self.outcome_heads_]

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw head outputs (n, K, S) float32 -> expected outcomes (n, K, M) float64."""
        from scipy.special import expit

        raw = raw.astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(self._head_sizes())[:-1]])
        chain = None if self.chain is None else (int(self.chain[0]), int(self.chain[1]))
        pred = np.empty(raw.shape[:2] + (len(self.outcome_heads_),))
        for m, (kind, s) in enumerate(zip(self.outcome_heads_, starts, strict=True)):
            if kind == "binary":
                pred[..., m] = expit(raw[..., s])
                if chain is not None and m == chain[1]:
                    pred[..., m] *= expit(raw[..., starts[chain[0]]])
            elif kind == "hurdle":
                pred[..., m] = (
                    expit(raw[..., s]) * np.exp(np.clip(raw[..., s + 1], -10, 10))
                    * self.y_scale_[m]
                )
            else:
                pred[..., m] = raw[..., s] * self.y_scale_[m] + self.y_shift_[m]
        return pred

    def _torch_network(self):
        """The fitted fp32 network in eval mode (a new module; torch is imported here)."""
        import torch

        net = self._network(
            len(self.numeric_features_), self.cardinalities_, self.n_arms_, self.outcome_heads_
        )
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_dict_.items()})
        return net.eval()

    def _runner(self):
        """The cached scoring function of ``serving_format``: (z, miss, codes) -> raw outputs.

        Built on first use and reused while the weights, format and thread count stay the
        same (a refit or ``set_params`` rebuilds it); never saved.
        """
        key = (self.serving_format, self.n_threads)
        cached = self.__dict__.get("_serving")
        if cached is not None and cached[0] is self.state_dict_ and cached[1] == key:
            return cached[2]
        from promolift.models import compress

        if self.serving_format in ("onnx", "onnx-int8"):
            run = compress.OnnxRunner(self._onnx_bytes(), n_threads=self.n_threads)
        else:
            net = self._torch_network()
            if self.serving_format == "int8":
                net = compress.quantize_torch(net)
            run = compress.TorchRunner(net, n_threads=self.n_threads)
        self.__dict__["_serving"] = (self.state_dict_, key, run)
        return run

    def _onnx_bytes(self, serving_format: str | None = None) -> bytes:
        """The ONNX file of an ONNX ``serving_format`` (loaded with the model, or made now)."""
        fmt = serving_format or self.serving_format
        cached = self.__dict__.get("_onnx")
        if cached is None or cached[0] is not self.state_dict_:
            cached = (self.state_dict_, {})
            self.__dict__["_onnx"] = cached
        files = cached[1]
        if fmt not in files:
            from promolift.models import compress

            if fmt == "onnx-int8":
                files[fmt] = compress.quantize_onnx(self._onnx_bytes("onnx"))
            else:
                files[fmt] = compress.export_onnx(
                    self._torch_network(), n_numeric=len(self.numeric_features_),
                    n_categorical=len(self.categorical_features_),
                )
        return files[fmt]

    def __getstate__(self):
        # the cached network / onnxruntime session is rebuilt on demand, never copied
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_serving"}

    # -- saving the serving artifact -----------------------------------------------------------

    def _save_artifacts(self, writer) -> dict[str, Any]:
        if self.serving_format not in ("onnx", "onnx-int8"):
            return {}  # int8 torch is re-quantized from the fp32 weights on load (no pickle)
        writer.write(_ONNX_FILE, self._onnx_bytes())
        return {"onnx": _ONNX_FILE}

    def _load_artifacts(self, artifacts: dict[str, Any], reader) -> None:
        wants = self.serving_format in ("onnx", "onnx-int8")
        if wants != ("onnx" in artifacts):
            raise BundleError(
                f"{reader.directory}: serving_format={self.serving_format!r} but the saved "
                f"model {'lacks' if wants else 'has'} an ONNX file; the model.json is corrupt or "
                "was edited. Re-save it (promolift compress MODEL_DIR --format ...)."
            )
        if wants:
            data = reader.read_bytes(artifacts["onnx"])
            self.__dict__["_onnx"] = (self.state_dict_, {self.serving_format: data})

    # -- the reference implementation ----------------------------------------------------------

    def _predict_unbatched(self, X: np.ndarray) -> np.ndarray:
        """The original fp32 predict: rebuilds the network per call and loops over the arms.

        Kept as the reference the batched serving path is tested and benchmarked against.
        """
        z, miss, codes = self._arrays(
            X, list(self.numeric_features_), list(self.categorical_features_),
            np.asarray(self.num_mean_), np.asarray(self.num_std_), self.categories_,
        )
        K, M = self.n_arms_, len(self.outcome_heads_)
        chain = None if self.chain is None else (int(self.chain[0]), int(self.chain[1]))
        pred = np.empty((len(X), K, M))
        with _torch_settings(self.n_threads) as torch:
            net = self._network(
                len(self.numeric_features_), self.cardinalities_, K, self.outcome_heads_
            )
            net.load_state_dict(
                {k: torch.from_numpy(np.asarray(v)) for k, v in self.state_dict_.items()}
            )
            net.eval()
            with torch.no_grad():
                for start in range(0, len(X), _PREDICT_BATCH):
                    sl = slice(start, start + _PREDICT_BATCH)
                    h = net.encode(
                        torch.from_numpy(z[sl]), torch.from_numpy(miss[sl]),
                        torch.from_numpy(codes[sl]),
                    )
                    for k in range(K):
                        arm = torch.full((h.shape[0],), k, dtype=torch.long)
                        out = net.heads_for(h, arm)
                        for m, (o, kind) in enumerate(zip(out, self.outcome_heads_, strict=True)):
                            o = o.double()
                            if kind == "binary":
                                p = torch.sigmoid(o[:, 0])
                                if chain is not None and m == chain[1]:
                                    p = p * torch.sigmoid(out[chain[0]][:, 0].double())
                                value = p
                            elif kind == "hurdle":
                                value = (
                                    torch.sigmoid(o[:, 0])
                                    * torch.exp(o[:, 1].clamp(-10, 10))
                                    * self.y_scale_[m]
                                )
                            else:
                                value = o[:, 0] * self.y_scale_[m] + self.y_shift_[m]
                            pred[sl, k, m] = value.numpy()
        return pred
