"""VampPrior collapse (issue 8, item 8): the known answers behind the diagnosis and its guard.

The diagnosis (experiments/vampprior_collapse/run.py): with the paper's ReLU + 1e-3 std head the
encoder's std units die while the decoder still ignores z, the VampPrior's components (which
use the same head) narrow to the 1e-3 floor, and the posterior can never spread again. These
tests pin the pieces: the mixture of identical components is exactly one component, a dead
ReLU std unit gets no gradient from the VampPrior ELBO while a softplus unit does, and
``health`` reports the floor state (and only it). Tiny sizes, CPU, well under a second each.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pipeline.layers import STD_FLOOR, StdHead
from pipeline.models.vae import gaussian_entropy
from pipeline.priors import build_prior
from pipeline.priors.base import diagonal_normal_log_prob

D_Z = 3


class HeadEncoder(nn.Module):
    """x (B, 1, 4, 4) -> flatten -> Linear mean, pipeline StdHead std: the real head semantics."""

    input_shape = (1, 4, 4)

    def __init__(self, std_activation: str = "relu", std_bias: float = 0.0):
        super().__init__()
        self.mean = nn.Linear(16, D_Z)
        self.std = StdHead(16, D_Z, std_activation)
        with torch.no_grad():
            self.std.linear.weight.mul_(0.1)
            self.std.linear.bias.fill_(std_bias)

    def forward(self, x):
        h = x.flatten(1)                   # (B, 16)
        return self.mean(h), self.std(h)   # (B, D_Z), (B, D_Z)


def vamp(encoder: nn.Module, k: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    prior = build_prior("vampprior", D_Z, {"n_components": k})
    prior.bind_encoder(encoder)
    return prior


def test_identical_components_are_one_component():
    """log (1/K) sum_k N(z; m, s) = log N(z; m, s) exactly: K coinciding pseudo-inputs give a
    single narrow Gaussian, the state the collapsed runs sit in."""
    enc = HeadEncoder(std_bias=0.3)
    prior = vamp(enc, k=6)
    with torch.no_grad():
        prior.pseudo_inputs.fill_(0.05)
        mean, std = enc(torch.full((1, 1, 4, 4), 0.05))  # (1, D_Z) each
    z = torch.randn(50, D_Z)
    expected = diagonal_normal_log_prob(z, mean, 2 * std.log())  # (50,)
    torch.testing.assert_close(prior.log_prob(z), expected, rtol=1e-5, atol=1e-5)


def test_collapse_stats_known_answers():
    enc = HeadEncoder(std_bias=-5.0)  # every ReLU pre-activation negative: std = floor exactly
    prior = vamp(enc, k=4)
    with torch.no_grad():
        enc.mean.weight.zero_()
        enc.mean.bias.zero_()
        enc.mean.weight[0].fill_(1.0 / 16)  # mean_0 = average pixel of the pseudo-image
        prior.pseudo_inputs.copy_(torch.tensor([0.0, 0.2, 0.4, 0.6]).view(4, 1, 1, 1).expand(4, 1, 4, 4))
    stats = prior.collapse_stats()
    assert stats["std_at_floor"] == 1.0
    assert stats["component_std"] == pytest.approx(STD_FLOOR)
    # Var_k (population) of (0, .2, .4, .6) in dimension 0, zero in the other two, averaged
    assert stats["component_mean_var"] == pytest.approx(torch.tensor([0.0, 0.2, 0.4, 0.6]).var(unbiased=False).item() / D_Z)


def test_health_reports_floor_state_only():
    dead = vamp(HeadEncoder(std_bias=-5.0))
    message = dead.health()
    assert len(message) == 1 and "collapse" in message[0] and "softplus" in message[0]
    alive = vamp(HeadEncoder(std_bias=0.5))
    assert alive.health() == []
    unbound = build_prior("vampprior", D_Z, {"n_components": 2})
    assert unbound.health() == []  # no encoder yet: nothing to judge, no crash


@pytest.mark.parametrize("activation, can_recover", [("relu", False), ("softplus", True)])
def test_dead_std_unit_gets_gradient_only_with_softplus(activation, can_recover):
    """The absorbing state: at std = floor the ReLU head has zero gradient, so neither the
    entropy nor the VampPrior term (which would widen the components to cover spread-out
    posteriors) can lift it; softplus keeps a gradient that widens std."""
    enc = HeadEncoder(activation, std_bias=-5.0)
    prior = vamp(enc, k=4)
    x = torch.rand(8, 1, 4, 4)
    mean, std = enc(x)                                          # (8, D_Z)
    z = mean + 3.0 * torch.randn_like(mean)                     # posteriors spread far from the spike
    objective = (gaussian_entropy(std) + prior.log_prob(z)).mean()  # the ELBO's -KL part
    objective.backward()
    grad = enc.std.linear.bias.grad                             # (D_Z,) ascent direction
    if can_recover:
        assert (grad > 0).all(), f"softplus head should be pushed wider, got {grad.tolist()}"
    else:
        assert torch.equal(grad, torch.zeros_like(grad)), "a dead ReLU std unit must get exactly zero gradient"
    assert math.isfinite(objective.item())
