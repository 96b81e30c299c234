"""Likelihood and KL terms against closed forms; architecture shapes (supplement E)."""

import math

import pytest
import torch
from torch.distributions import Laplace, Normal, kl_divergence

from pipeline.models.celeba import CelebaDecoder, CelebaEncoder
from pipeline.layers import symmetric_pad
from pipeline.models.mnist import MnistCodeDecoder, MnistCodeEncoder, MnistDecoder, MnistEncoder
from pipeline.models.vae import VAE, build_vae, gaussian_entropy, laplace_log_likelihood
from pipeline.priors import build_prior
from pipeline.priors.base import standard_normal_log_prob


def test_laplace_log_likelihood_matches_torch_distribution():
    torch.manual_seed(0)
    x, mean = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    scale = torch.tensor(0.13)
    expected = Laplace(mean, scale).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(laplace_log_likelihood(x, mean, scale), expected)


def test_laplace_scale_maximum_likelihood_is_the_mean_absolute_error():
    # supplement C: d/dsigma of the Laplace log-likelihood vanishes at sigma = MAE
    torch.manual_seed(1)
    x, mean = torch.rand(8, 1, 6, 6), torch.rand(8, 1, 6, 6)
    mae = (x - mean).abs().mean()
    sigmas = torch.linspace(0.5 * mae.item(), 2 * mae.item(), 301)
    values = torch.stack([laplace_log_likelihood(x, mean, s).sum() for s in sigmas])
    assert abs(sigmas[values.argmax()].item() - mae.item()) < 0.01 * mae.item()


def test_gaussian_entropy_matches_torch():
    std = torch.rand(4, 7) + 0.1
    torch.testing.assert_close(gaussian_entropy(std), Normal(torch.zeros_like(std), std).entropy().sum(-1))


def test_entropy_plus_cross_entropy_is_minus_kl_for_the_normal_prior():
    # H[q] + E_q[log N(z;0,I)] = -KL(q || N(0,I)); check the Monte-Carlo cross-entropy converges to it
    torch.manual_seed(2)
    mean, std = torch.randn(3, 4), torch.rand(3, 4) + 0.2
    z = mean + std * torch.randn(200_000, 3, 4)
    cross_entropy = standard_normal_log_prob(z).mean(0)
    kl = kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_entropy(std) + cross_entropy, -kl, atol=0.02, rtol=0)


def test_symmetric_pad_mirrors_including_the_edge():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    padded = symmetric_pad(x, 2)
    assert padded.shape == (1, 1, 7, 7)
    # TF SYMMETRIC: row [0 1 2] -> [1 0 | 0 1 2 | 2 1]
    assert padded[0, 0, 2].tolist() == [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 1.0]


@pytest.mark.parametrize("enc_cls,dec_cls,shape,d_z", [(MnistEncoder, MnistDecoder, (1, 28, 28), 16), (MnistCodeEncoder, MnistCodeDecoder, (1, 28, 28), 16),
                                                      (CelebaEncoder, CelebaDecoder, (3, 128, 128), 8)])
def test_architecture_shapes_and_output_range(enc_cls, dec_cls, shape, d_z):
    encoder, decoder = enc_cls(d_z), dec_cls(d_z)
    mean, std = encoder(torch.rand(2, *shape))
    assert mean.shape == std.shape == (2, d_z)
    assert (std > 0).all()
    out = decoder(mean)
    assert out.shape == (2, *shape)
    assert torch.isfinite(out).all()
    assert encoder.input_shape == shape


def _conv_widths(module: torch.nn.Module) -> list[int]:
    return [m.out_channels for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_mnist_code_is_the_original_codes_fashion_network_with_relu_output():
    """architecture 'mnist_code' (codes/models.py, MNISTModel_fashion, 256 hidden units), selectable by config."""
    settings = {"architecture": "mnist_code", "d_z": 16, "prior": "normal", "decoder_output": "relu"}
    vae = build_vae(settings)
    assert _conv_widths(vae.encoder) == [64, 64, 128, 128] and vae.encoder.mean.in_features == 256
    assert _conv_widths(vae.decoder) == [256, 256, 256, 256, 1] and vae.decoder.fc[0].out_features == 256
    slopes = {m.negative_slope for m in vae.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}  # TF's leaky_relu default
    assert (vae.decode(torch.randn(64, 16) * 10) >= 0).all()  # the original code's ReLU output
    assert _conv_widths(build_vae({**settings, "architecture": "mnist"}).decoder) == [256, 64, 16, 1]  # supplement E.1


def test_vae_terms_add_up():
    torch.manual_seed(3)
    vae = VAE(MnistEncoder(4), MnistDecoder(4), build_prior("normal", 4, {}))
    terms = vae.terms(torch.rand(3, 1, 28, 28))
    torch.testing.assert_close(terms["elbo"], terms["rec_loglik"] + terms["entropy"] + terms["log_prior"])


def test_decoder_scale_modes():
    mle = VAE(MnistEncoder(4), MnistDecoder(4), build_prior("normal", 4, {}), scale_mode="mle")
    mle.update_scale(0.9)
    mle.update_scale(0.1)  # mle stores the batch MAE itself
    assert math.isclose(mle.scale.item(), 0.1, rel_tol=1e-6) and not mle.log_scale.requires_grad
    learned = VAE(MnistEncoder(4), MnistDecoder(4), build_prior("normal", 4, {}), init_scale=0.5, scale_mode="learned")
    learned.update_scale(0.2)  # below sigma: the floor does nothing
    assert math.isclose(learned.scale.item(), 0.5, rel_tol=1e-6) and learned.log_scale.requires_grad
    learned.update_scale(0.9)  # above sigma: floored up to the MAE
    assert math.isclose(learned.scale.item(), 0.9, rel_tol=1e-6)


def test_training_mode_uses_the_batch_mae_as_scale():
    torch.manual_seed(4)
    vae = VAE(MnistEncoder(4), MnistDecoder(4), build_prior("normal", 4, {}), scale_mode="mle").train()
    x = torch.rand(3, 1, 28, 28)
    terms = vae.terms(x)
    d = x[0].numel()
    # with sigma = MAE the Laplace term is -d (1 + log(2 MAE)) on average over the batch
    torch.testing.assert_close(terms["rec_loglik"].mean(), -d * (1 + torch.log(2 * terms["mae"])), rtol=1e-5, atol=1e-3)
