"""Serving formats of the deep model: int8 PyTorch, ONNX and int8 ONNX, and bundle conversion.

A fitted :class:`~promolift.models.DeepModel` runs its network in one of
:data:`SERVING_FORMATS` (its ``serving_format`` hyperparameter):

``"fp32"``
    PyTorch, float32 (the training precision).
``"int8"``
    PyTorch with the Linear layers dynamically quantized to int8
    (``torch.ao.quantization.quantize_dynamic``). Nothing extra is saved: the int8 weights are
    re-quantized from the saved fp32 weights on load, which is deterministic (per-tensor
    min/max) and avoids serialising quantized modules, which needs pickle.
``"onnx"``
    An ONNX export (``torch.onnx.export(dynamo=True)``) run by onnxruntime on the CPU.
``"onnx-int8"``
    The ONNX export with its MatMul weights dynamically quantized to int8 by onnxruntime's
    ``quantize_dynamic``.

The ONNX formats save a ``network.onnx`` (protobuf, no pickle) beside ``model.json``, with
its SHA-256 in both ``model.json`` and the bundle manifest; predicting with them needs
onnxruntime but not torch. Converting needs torch, onnx and onnxscript.

:func:`compress_bundle` converts every deep model of a :class:`~promolift.bundle.ModelBundle`;
``promolift compress MODEL_DIR --format onnx`` rewrites a bundle directory atomically.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from promolift.errors import ConfigError
from promolift.models.deep import SERVING_FORMATS, _torch_settings

__all__ = [
    "SERVING_FORMATS",
    "OnnxRunner",
    "TorchRunner",
    "check_onnx_support",
    "compress_bundle",
    "compress_bundle_dir",
    "export_onnx",
    "quantize_onnx",
    "quantize_torch",
]

_ONNX_HINT = 'pip install "promolift[onnx]"'
_PARALLEL_ROWS = 256
"""Torch scores smaller batches on one thread: a thread pool only adds latency there (measured
~1 ms on one thread vs ~0.2 s on two for a single customer on a busy 2-core machine)."""
_INPUTS = ("x_num", "x_miss", "x_cat")


def check_onnx_support(*, export: bool = False) -> None:
    """Raise an ImportError naming the extra to install if the ONNX tools are missing.

    Parameters
    ----------
    export : bool, default=False
        Also require what exporting needs (torch, onnx, onnxscript), not only onnxruntime.

    Raises
    ------
    ImportError
        If a needed package is not installed.
    """
    import importlib.util

    needed = ["onnxruntime"] + (["torch", "onnx", "onnxscript"] if export else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        what = "export the deep model to ONNX" if export else "run an ONNX deep model"
        raise ImportError(
            f"To {what}, install {', '.join(missing)}: {_ONNX_HINT} "
            "(or use serving_format='fp32' / 'int8', which need only torch)."
        )


def quantize_torch(net: Any) -> Any:
    """Dynamic int8 quantization of the ``nn.Linear`` layers of an eval-mode network.

    Returns a quantized copy. Uses ``torch.ao.quantization.quantize_dynamic``: deprecated in favour of torchao, whose
    CPU path measured ~10x slower than fp32 here (torchao 0.18, torch 2.13), while this one is
    present and faster in the pinned torch 2.13. Its deprecation warnings are silenced.
    """
    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize.*deprecated", category=UserWarning)
        qnet = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
    for layer in qnet.modules():
        if isinstance(layer, nn.TransformerEncoderLayer):
            # the fused fast path reads `linear1.weight` as a tensor, which a quantized Linear's
            # is not; a (no-op) forward pre-hook makes this layer take the regular path
            layer.register_forward_pre_hook(_regular_path)
    return qnet


def _regular_path(module: Any, args: Any) -> None:
    return None


class TorchRunner:
    """Scores feature arrays with a torch network (fixed threads, inference mode).

    Parameters
    ----------
    net : torch.nn.Module
        The deep model's network in eval mode (fp32 or int8).
    n_threads : int
        Torch CPU threads while scoring batches of at least 256 rows (smaller ones: one).
    """

    def __init__(self, net: Any, *, n_threads: int) -> None:
        self.net = net
        self.n_threads = n_threads

    def __call__(self, z: np.ndarray, miss: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Raw head outputs (n, K, S) float32 of every arm."""
        threads = self.n_threads if len(z) >= _PARALLEL_ROWS else 1
        with _torch_settings(threads) as torch, torch.inference_mode():
            out = self.net(torch.from_numpy(z), torch.from_numpy(miss), torch.from_numpy(codes))
            return out.numpy()


class OnnxRunner:
    """Scores feature arrays with an ONNX network on onnxruntime's CPU execution provider.

    Parameters
    ----------
    data : bytes
        The ONNX model (from :func:`export_onnx` or :func:`quantize_onnx`).
    n_threads : int
        onnxruntime intra-op threads (inter-op: 1, sequential execution).

    Raises
    ------
    ImportError
        If onnxruntime is not installed (the message names the extra).
    promolift.errors.BundleError
        If onnxruntime cannot read the model (a corrupt file).
    """

    def __init__(self, data: bytes, *, n_threads: int) -> None:
        check_onnx_support()
        import onnxruntime as ort

        from promolift.errors import BundleError

        options = ort.SessionOptions()
        options.intra_op_num_threads = n_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise BundleError(
                f"onnxruntime cannot load the deep model's ONNX network ({exc}); the file is "
                "corrupt. Re-create it: promolift compress MODEL_DIR --format onnx"
            ) from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, z: np.ndarray, miss: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Raw head outputs (n, K, S) float32 of every arm."""
        feeds = dict(zip(_INPUTS, (z, miss, codes), strict=True))
        return self.session.run(None, {name: feeds[name] for name in self.inputs})[0]


def export_onnx(net: Any, *, n_numeric: int, n_categorical: int) -> bytes:
    """Export the deep model's network (all arms, raw outputs) to ONNX with a dynamic batch.

    Uses the torch.export-based exporter (``dynamo=True``, the default and maintained one in
    torch 2.13; the TorchScript exporter is deprecated).

    Parameters
    ----------
    net : torch.nn.Module
        The fp32 network in eval mode.
    n_numeric, n_categorical : int
        Number of numeric and categorical feature tokens.

    Returns
    -------
    bytes
        The serialized ONNX model (opset of the exporter), inputs ``x_num`` float32 (n, p),
        ``x_miss`` bool (n, p), ``x_cat`` int64 (n, c); output ``raw`` float32 (n, K, S).
    """
    check_onnx_support(export=True)
    import logging

    import torch

    n = 8  # example batch (> 1 so the exporter does not specialise the batch size)
    args = (
        torch.zeros(n, n_numeric), torch.zeros(n, n_numeric, dtype=torch.bool),
        torch.ones(n, n_categorical, dtype=torch.long),
    )
    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                net, args, input_names=list(_INPUTS), output_names=["raw"],
                dynamic_shapes=({0: batch}, {0: batch}, {0: batch}),
                dynamo=True, optimize=True, verbose=False, report=False,
            )
    finally:
        quiet.setLevel(level)
    return program.model_proto.SerializeToString()


def quantize_onnx(data: bytes) -> bytes:
    """Dynamic int8 quantization (int8 weights, activations quantized per call) of an ONNX model.

    Uses ``onnxruntime.quantization.quantize_dynamic`` with signed int8 weights and
    ``reduce_range=True`` (7-bit weights): without it, the uint8 x int8 kernels of CPUs
    without VNNI (AVX2) saturate, which measured a 10x larger error here. Deterministic.
    """
    check_onnx_support()
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _DropMessage("Please consider to run pre-processing before quantization")
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        with tempfile.TemporaryDirectory(prefix="promolift-onnx-") as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(src, dst, weight_type=QuantType.QInt8, reduce_range=True)
            return dst.read_bytes()
    finally:
        root.removeFilter(hint)


class _DropMessage:
    """Logging filter that drops records starting with a given text."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith(self.prefix)


def compress_bundle(bundle: Any, serving_format: str) -> Any:
    """A copy of a bundle whose deep model(s) run in ``serving_format``.

    Parameters
    ----------
    bundle : promolift.bundle.ModelBundle
        A trained bundle with at least one model kind that has serving formats (``deep``).
    serving_format : {"fp32", "int8", "onnx", "onnx-int8"}
        The format to convert to (converting back to ``"fp32"`` is lossless: the fp32
        weights are always kept).

    Returns
    -------
    promolift.bundle.ModelBundle
        A new bundle (the input is unchanged); the conversion is done here, so
        ``save`` only writes files.

    Raises
    ------
    promolift.errors.ConfigError
        If the format is unknown or the bundle has no deep model.
    ImportError
        If an ONNX format is asked for without onnxruntime/onnx/onnxscript.
    """
    if serving_format not in SERVING_FORMATS:
        raise ConfigError(
            f"unknown serving format {serving_format!r}; choose one of "
            f"{', '.join(repr(f) for f in SERVING_FORMATS)}."
        )
    kinds = [k for k, m in bundle.models.items() if "serving_format" in m.get_params(deep=False)]
    if not kinds:
        raise ConfigError(
            f"serving format {serving_format!r} applies to the 'deep' model kind, but this bundle "
            f"has only {', '.join(sorted(bundle.models))}; add \"deep\" to kinds in the [model] "
            "section of campaign.toml and re-train."
        )
    if serving_format.startswith("onnx"):
        check_onnx_support(export=True)
    models = dict(bundle.models)
    for kind in kinds:
        model = copy.copy(models[kind]).set_params(serving_format=serving_format)
        if serving_format.startswith("onnx"):
            model._onnx_bytes()  # export now: errors surface here, not half-way through save
        models[kind] = model
    return dataclasses.replace(bundle, models=models)


def compress_bundle_dir(
    path: str | Path, serving_format: str, *, out: str | Path | None = None
) -> Path:
    """Convert the deep model(s) of a saved bundle and write it atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        A bundle directory written by ``promolift train``.
    serving_format : {"fp32", "int8", "onnx", "onnx-int8"}
        The serving format.
    out : str or pathlib.Path, optional
        Where to write the converted bundle; default: replace ``path`` (only once the new
        bundle is complete).

    Returns
    -------
    pathlib.Path
        The directory written.

    Raises
    ------
    promolift.errors.BundleError
        If ``path`` is not a valid bundle.
    promolift.errors.ConfigError
        If the format is unknown or the bundle has no deep model.
    """
    from promolift.bundle import ModelBundle

    bundle = compress_bundle(ModelBundle.load(path), serving_format)
    return bundle.save(Path(path) if out is None else Path(out))
