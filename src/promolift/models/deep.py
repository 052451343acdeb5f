"""An opt-in deep multi-task, multi-treatment response model (PyTorch, CPU).

:class:`DeepModel` (kind ``"deep"``) encodes every customer with a small FT-Transformer
(one token per feature plus a CLS token) and predicts every arm with treatment-aware heads:
an arm embedding is concatenated with the CLS representation and fed to one MLP head per
outcome, once per arm. All arms and outcomes are learned jointly (multi-task):

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
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from promolift.models.base import Interval, ResponseModel, TrainingData

__all__ = ["DeepModel"]

_PREDICT_BATCH = 4096


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
            self.arm_embedding = nn.Embedding(n_arms, d)
            nn.init.normal_(self.arm_embedding.weight, std=0.1)
            self.heads = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(2 * d, 2 * d), nn.GELU(), nn.Dropout(dropout),
                    nn.Linear(2 * d, size),
                )
                for size in head_sizes
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
            z = torch.cat([h, self.arm_embedding(arm)], dim=1)
            return [head(z) for head in self.heads]

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
    validation_fraction : float, default=0.2
        Share of rows held out for early stopping (on the validation loss).
    patience : int, default=4
        Epochs without validation improvement before stopping; the best epoch is kept.
    random_state : int, default=0
    n_threads : int, default=2
        Torch CPU threads during fit and predict.

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
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "patience": [Interval(Integral, 1, None)],
        "random_state": [Interval(Integral, 0, 2**32 - 1)],
        "n_threads": [Interval(Integral, 1, None)],
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
        validation_fraction: float = 0.2,
        patience: int = 4,
        random_state: int = 0,
        n_threads: int = 2,
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
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.n_threads = n_threads

    # -- features ----------------------------------------------------------------------------

    def _arrays(
        self,
        X: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        mean: np.ndarray,
        std: np.ndarray,
        categories: dict[str, list[Any]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(X)
        raw = np.column_stack([X[c].to_numpy(np.float64) for c in numeric]) if numeric else (
            np.zeros((n, 0))
        )
        miss = np.isnan(raw)
        z = np.where(miss, 0.0, (raw - mean) / std).astype(np.float32)
        codes = np.zeros((n, len(categorical)), dtype=np.int64)
        for j, c in enumerate(categorical):
            col = pd.Categorical(
                np.asarray(X[c].astype(object), dtype=object), categories=categories[c]
            )
            codes[:, j] = col.codes.astype(np.int64) + 1  # 0 = missing / unseen
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
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    loss = self._loss(net, [t[idx] for t in tensors], heads, chain)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                net.eval()
                with torch.no_grad():
                    total = 0.0
                    for start in range(0, len(val_t), _PREDICT_BATCH):
                        idx = val_t[start : start + _PREDICT_BATCH]
                        batch = [t[idx] for t in tensors]
                        total += float(self._loss(net, batch, heads, chain)) * len(idx)
                    val_loss = total / len(val_t)
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

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
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
