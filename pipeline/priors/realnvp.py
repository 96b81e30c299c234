"""Real NVP prior (Xu et al. 2019, appendix B.2): p(z) = N(f(z); 0, I) |det df/dz|.

f = f_K o ... o f_1 maps z to the base variable w; each block f_k is

    h -> InvertibleDense -> CouplingLayer -> ActNorm                      (Xu et al. B.2)
    CouplingLayer(u) = [u_l, u_r * sigmoid(s(h(u_l)) + scale_bias) + t(h(u_l))]

with u_l the first floor(d/2) coordinates, h(.) ``n_layers`` leaky-ReLU dense layers of width
``hidden`` (the paper: one Dense[256]), s and t linear heads. log p(z) is exact by the change of
variables (Xu et al. Eq. 4): log N(f(z); 0, I) + sum_k log |det df_k/dh_k|; sampling draws
w ~ N(0, I) and returns f^{-1}(w).

Choices the paper leaves open, each documented where it is made:

- InvertibleDense is LU-parameterised as Glow's invertible 1x1 convolution (Kingma & Dhariwal
  2018, Sec. 3.2): W = P L (U + diag(sign * exp(log_s))), P a fixed permutation, initialised
  from a random orthogonal matrix. log |det W| = sum log_s, and W is invertible by construction.
- ``scale_bias=2``: the sigmoid's argument is offset by 2 as in Glow's code (and tfsnippet,
  which Xu et al. used), so a fresh coupling scales by sigmoid(2) = 0.88 rather than 0.5.
- Initialisation: the s and t heads start at zero (Glow's zero init) and ActNorm's log-scale
  starts at -log sigmoid(scale_bias) on the coupled half, which exactly undoes the coupling's
  initial scale. Each block then starts as its rotation W, so the prior starts as exactly
  N(0, I), the same starting point as the other priors.
- No data-dependent ActNorm initialisation (Glow initialises ActNorm from the first batch):
  in joint training the first batch's z come from a random encoder and do not carry
  information about the later q(z), and a data-dependent init would add an "initialised" flag
  to the state that resume must restore and the trainer must trigger. The deterministic
  init above keeps every piece of state in ordinary parameters, so a checkpoint round trip
  restores the prior exactly.
- Xu et al.'s L2 penalty (1e-4 on hidden kernels) is not applied: every prior here is trained
  by the one protocol of pipeline/training.py, which has no weight decay.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.priors.base import Option, Prior, randn, register_prior, standard_normal_log_prob
from pipeline.priors.prior_vae import LEAKY_SLOPE


class InvertibleDense(nn.Module):
    """y = W u with W = P L (U + diag(sign * exp(log_s))) (Glow Sec. 3.2, LU form)."""

    def __init__(self, d: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(d, d))  # random rotation, as Glow's init
        p, lower, upper = torch.linalg.lu(q)
        s = upper.diagonal()
        self.register_buffer("perm", p)                     # (d, d), fixed
        self.register_buffer("sign_s", torch.sign(s))       # (d,), fixed: sign(det) is not learnable
        self.register_buffer("lower_mask", torch.tril(torch.ones(d, d), -1))
        self.lower = nn.Parameter(lower * self.lower_mask)  # (d, d), strictly lower part used
        self.upper = nn.Parameter(torch.triu(upper, 1))     # (d, d), strictly upper part used
        self.log_s = nn.Parameter(s.abs().log())            # (d,)

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.log_s.shape[0], device=self.log_s.device, dtype=self.log_s.dtype)
        lower = self.lower * self.lower_mask + eye                                   # (d, d) unit lower
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())  # (d, d)
        return lower, upper

    def weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        return self.perm @ lower @ upper  # (d, d)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., d) -> (..., d), log|det W| ()"""
        return u @ self.weight().T, self.log_s.sum()

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """u = U^{-1} L^{-1} P^T y by triangular solves: (..., d) -> (..., d)"""
        lower, upper = self._factors()
        cols = (y.reshape(-1, y.shape[-1]) @ self.perm).T  # (d, N): P^T y, one column per point
        cols = torch.linalg.solve_triangular(lower, cols, upper=False, unitriangular=True)
        cols = torch.linalg.solve_triangular(upper, cols, upper=True)
        return cols.T.reshape(y.shape)


class AffineCoupling(nn.Module):
    """[u_l, u_r * sigmoid(s(h(u_l)) + scale_bias) + t(h(u_l))] (Xu et al. B.2)."""

    def __init__(self, d: int, hidden: int, n_layers: int, scale_bias: float):
        super().__init__()
        self.d_l = d // 2
        d_r = d - self.d_l
        layers: list[nn.Module] = []
        width = self.d_l
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(LEAKY_SLOPE)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.s = nn.Linear(width, d_r)
        self.t = nn.Linear(width, d_r)
        for head in (self.s, self.t):  # zero init: the coupling starts as a fixed scaling
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.scale_bias = float(scale_bias)

    def _scale_shift(self, u_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(u_l)  # (..., hidden)
        return self.s(h) + self.scale_bias, self.t(h)  # pre-sigmoid (..., d_r), shift (..., d_r)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., d) -> (..., d), log|det| (...)"""
        u_l, u_r = u[..., : self.d_l], u[..., self.d_l:]
        pre, shift = self._scale_shift(u_l)
        y_r = u_r * torch.sigmoid(pre) + shift  # (..., d_r)
        return torch.cat([u_l, y_r], -1), F.logsigmoid(pre).sum(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y_l, y_r = y[..., : self.d_l], y[..., self.d_l:]
        pre, shift = self._scale_shift(y_l)
        return torch.cat([y_l, (y_r - shift) * (1 + torch.exp(-pre))], -1)  # 1/sigmoid(a) = 1 + e^-a


class ActNorm(nn.Module):
    """y = u * exp(log_scale) + bias, per dimension (Glow Sec. 3.1), without data-dependent init."""

    def __init__(self, d: int, log_scale_init: torch.Tensor):
        super().__init__()
        self.log_scale = nn.Parameter(log_scale_init.clone())  # (d,)
        self.bias = nn.Parameter(torch.zeros(d))               # (d,)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return u * self.log_scale.exp() + self.bias, self.log_scale.sum()

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.bias) * torch.exp(-self.log_scale)


class FlowBlock(nn.Module):
    """f_k: InvertibleDense -> CouplingLayer -> ActNorm."""

    def __init__(self, d: int, hidden: int, n_layers: int, scale_bias: float):
        super().__init__()
        self.dense = InvertibleDense(d)
        self.coupling = AffineCoupling(d, hidden, n_layers, scale_bias)
        # undo the fresh coupling's scale sigmoid(scale_bias) on the coupled half: block = W at init
        init = torch.zeros(d)
        init[self.coupling.d_l:] = -F.logsigmoid(torch.tensor(float(scale_bias)))
        self.actnorm = ActNorm(d, init)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, ld_dense = self.dense(h)
        h, ld_coupling = self.coupling(h)
        h, ld_actnorm = self.actnorm(h)
        return h, ld_dense + ld_coupling + ld_actnorm

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.dense.inverse(self.coupling.inverse(self.actnorm.inverse(y)))


@register_prior("realnvp")
class RealNVPPrior(Prior):
    """Options (defaults = Xu et al.'s main setting):

    - ``n_blocks=20``: K, the flow depth (Xu et al. Table 1; Table 2 also tries up to 50).
    - ``hidden=256``, ``n_layers=1``: the coupling network h = Dense[256] with leaky ReLU.
    - ``scale_bias=2.0``: the coupling scale is sigmoid(s + scale_bias) (Glow's offset).

    Needs d_z >= 2 (the coupling splits z in halves). Trained jointly with the autoencoder
    (Xu et al.'s "joint training", their best): its parameters join the autoencoder's Adam.
    """

    label = "Real NVP"
    option_specs = {
        "n_blocks": Option("int", minimum=1),
        "hidden": Option("int", minimum=1),
        "n_layers": Option("int", minimum=0),
        "scale_bias": Option("float"),
    }
    exact = True
    trained_with_autoencoder = True

    def __init__(self, d_z: int, n_blocks: int = 20, hidden: int = 256, n_layers: int = 1, scale_bias: float = 2.0):
        super().__init__(d_z)
        if d_z < 2:
            raise ValueError(f"realnvp prior: the coupling layers split z in two halves, so d_z must be >= 2 (got {d_z})")
        if int(n_blocks) < 1 or int(hidden) < 1 or int(n_layers) < 0:
            raise ValueError(f"realnvp prior: need n_blocks >= 1, hidden >= 1, n_layers >= 0; got {n_blocks}, {hidden}, {n_layers}")
        self.n_blocks, self.hidden, self.n_layers = int(n_blocks), int(hidden), int(n_layers)
        self.blocks = nn.ModuleList(FlowBlock(d_z, self.hidden, self.n_layers, scale_bias) for _ in range(self.n_blocks))

    def forward_flow(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """w = f(z) and log|det df/dz|: (..., d_z) -> (..., d_z), (...)"""
        log_det = torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)  # (...)
        h = z
        for block in self.blocks:
            h, ld = block(h)
            log_det = log_det + ld
        return h, log_det

    def inverse_flow(self, w: torch.Tensor) -> torch.Tensor:
        """z = f^{-1}(w): (..., d_z) -> (..., d_z)"""
        h = w
        for block in reversed(self.blocks):
            h = block.inverse(h)
        return h

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """Exact log p(z) = log N(f(z); 0, I) + log|det df/dz| (Xu et al. Eq. 4): (B, d_z) -> (B,)"""
        w, log_det = self.forward_flow(z)  # (B, d_z), (B,)
        return standard_normal_log_prob(w) + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = f^{-1}(w), w ~ N(0, I) drawn with ``generator``: (n, d_z)"""
        like = self.blocks[0].actnorm.bias
        w = randn((n, self.d_z), like, generator)  # (n, d_z)
        return self.inverse_flow(w)


__all__ = ["RealNVPPrior", "InvertibleDense", "AffineCoupling", "ActNorm", "FlowBlock"]
