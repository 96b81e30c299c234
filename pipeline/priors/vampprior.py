"""VampPrior (Tomczak & Welling 2018): p(z) = 1/K sum_k q(z | u_k) with learned pseudo-inputs u_k.

The encoder q(z|x) is the data VAE's own (shared, not owned: it is not a submodule of the prior,
so its weights appear once in the VAE's state dict). The pseudo-inputs are created in
``bind_encoder`` with the encoder's input shape and trained by the ELBO with the autoencoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.layers import STD_FLOOR
from pipeline.priors.base import Option, Prior, diagonal_normal_log_prob, generator_device, randn, register_prior

# health(): a component std within this factor of the encoder's floor counts as "at the floor"
FLOOR_TOLERANCE = 1.01
# health(): warn when at least this fraction of the components' std entries sit at the floor (dead
# ReLU units never come back; a healthy softplus head never reaches the floor)
DEAD_STD_FRACTION = 0.25


@register_prior("vampprior")
class VampPrior(Prior):
    """Options (defaults = paper scale):

    - ``n_components=50``: K pseudo-inputs, what the LaDDer code used for its VampPrior
      baseline. The VampPrior paper uses K = 500 (1000 on Omniglot).
    - ``pseudo_init_mean=0.05``, ``pseudo_init_std=0.01``: u_k ~ N(mean, std^2) per pixel, the
      VampPrior official initialisation (the LaDDer code drew N(0, 1)).
    - ``pseudo_activation='hardtanh'``: the encoder sees hardtanh(u_k, 0, 1), i.e. u_k clamped
      into the image range [0, 1], as the official code; 'none' feeds u_k unchanged.
    - ``warmup_epochs=0``: epochs trained against N(0, I) first, as the LaDDer code's VampPrior
      baseline (``Prior.begin_epoch``; config sets it per dataset).

    log p(z) is exact (log-sum-exp over the K components). ``sample`` draws components
    uniformly at random, then z ~ q(z | u_k). The encoder must return std > 0.

    Collapse (issue 8, measured in ``experiments/vampprior_collapse/run.py``): the components' std
    is the encoder's std head. With the paper's ReLU + 1e-3 head nothing holds it up (unlike
    N(0, I), which pulls std towards 1): while the decoder still ignores z, shrinking the std
    costs no KL (every q(z|x) equals every q(z|u_k)), so the ReLU units die one by one and
    stay dead (zero gradient), and the prior narrows to std 1e-3 in every dimension. Spreading
    the posterior means by delta then costs delta^2 / (2e-6) nats per dimension: 0 active
    units, forever. ``health`` reports that state; the cure is ``std_activation: softplus``.
    """

    label = "VampPrior"
    option_specs = {
        "n_components": Option("int", minimum=1),
        "pseudo_init_mean": Option("float"),
        "pseudo_init_std": Option("float", minimum=0),
        "pseudo_activation": Option("str", choices=("hardtanh", "none")),
        "warmup_epochs": Option("int", minimum=0),
    }
    exact = True
    trained_with_autoencoder = True

    def __init__(
        self,
        d_z: int,
        n_components: int = 50,
        pseudo_init_mean: float = 0.05,
        pseudo_init_std: float = 0.01,
        pseudo_activation: str = "hardtanh",
        warmup_epochs: int = 0,
    ):
        super().__init__(d_z)
        self.warmup_epochs = int(warmup_epochs)  # the original's N(0, I) warm-up (Prior.begin_epoch)
        if pseudo_activation not in ("hardtanh", "none"):
            raise ValueError(f"pseudo_activation must be 'hardtanh' or 'none', got {pseudo_activation!r}")
        self.n_components = int(n_components)
        self.pseudo_init_mean = float(pseudo_init_mean)
        self.pseudo_init_std = float(pseudo_init_std)
        self.pseudo_activation = pseudo_activation
        object.__setattr__(self, "_encoder", None)

    # -- encoder and pseudo-inputs ---------------------------------------------------------
    def bind_encoder(self, encoder: nn.Module) -> None:
        """Keep the (shared) encoder without registering it; create u (K, C, H, W)."""
        object.__setattr__(self, "_encoder", encoder)
        shape = tuple(encoder.input_shape)
        if "pseudo_inputs" in self._parameters and tuple(self.pseudo_inputs.shape[1:]) == shape:
            return
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        u = torch.randn(self.n_components, *shape, device=device) * self.pseudo_init_std + self.pseudo_init_mean  # (K, C, H, W)
        self.pseudo_inputs = nn.Parameter(u)

    @property
    def encoder(self) -> nn.Module:
        if self._encoder is None:
            raise RuntimeError("VampPrior needs the VAE's encoder: call bind_encoder(encoder) first")
        return self._encoder

    def pseudo_images(self) -> torch.Tensor:
        """What the encoder sees: (K, C, H, W)"""
        if self.pseudo_activation == "hardtanh":
            return F.hardtanh(self.pseudo_inputs, 0.0, 1.0)
        return self.pseudo_inputs

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | u_k): mean (K, d_z), std (K, d_z)"""
        return self.encoder(self.pseudo_images())

    # -- density and sampling ------------------------------------------------------------
    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """log 1/K sum_k q(z|u_k): (B, d_z) -> (B,)"""
        mean, std = self.components()  # (K, d_z), (K, d_z)
        log_comp = diagonal_normal_log_prob(z.unsqueeze(1), mean, 2 * std.log())  # (B, K)
        return torch.logsumexp(log_comp, dim=1) - math.log(self.n_components)  # (B,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """k ~ U{1..K}, z ~ q(z|u_k): (n, d_z)"""
        mean, std = self.components()  # (K, d_z), (K, d_z)
        k = torch.randint(self.n_components, (n,), generator=generator, device=generator_device(generator, mean)).to(mean.device)  # (n,)
        eps = randn((n, self.d_z), mean, generator)  # (n, d_z)
        return mean[k] + std[k] * eps  # (n, d_z)

    # -- diagnostics -----------------------------------------------------------------------
    @torch.no_grad()
    def collapse_stats(self) -> dict:
        """Fraction of component std entries at the encoder's floor, and the spread of the
        component means (mean over dimensions of Var_k). Both ~0 / ~1 mean collapse."""
        mean, std = self.components()  # (K, d_z), (K, d_z)
        return {
            "std_at_floor": (std <= STD_FLOOR * FLOOR_TOLERANCE).double().mean().item(),
            "component_mean_var": mean.double().var(0, unbiased=False).mean().item(),
            "component_std": std.double().mean().item(),
        }

    def health(self) -> list[str]:
        problems = super().health()
        if problems or self._encoder is None:
            return problems
        stats = self.collapse_stats()
        if stats["std_at_floor"] >= DEAD_STD_FRACTION:
            problems.append(
                f"VampPrior collapse: {stats['std_at_floor']:.0%} of the components' std entries sit at the encoder's "
                f"floor {STD_FLOOR} (dead ReLU std units), so p(z) is a spike and the posterior cannot spread; "
                "set training.std_activation: softplus (experiments/vampprior_collapse/run.py, docs/science.md)")
        return problems
