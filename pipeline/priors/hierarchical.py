"""Hierarchical prior: the prior VAE with a fixed hyper prior p(t) = N(0, I).

p(z) = integral p(z|t) p(t) dt, with p(z|t) and q(t|z) from ``PriorVAE``. This is the
"hierarchical" baseline of the LaDDer paper and the base class of the LaDDer prior, which
replaces p(t) by a fitted Dirichlet-process mixture.

Densities (B = batch, S = samples of t):

- ``prior_elbo(z, S)``: L(z; alpha, beta) of Eq. 4 for one z: the mean over S reparameterised
  t ~ q(t|z) of log p(z|t) + log p(t) - log q(t|z). A lower bound on log p(z) in expectation.
- ``log_prob(z, K)``: importance-sampling estimate with a proposal r(t|z),
  logsumexp_k [log p(z|t_k) + log p(t_k) - log r(t_k|z)] - log K. Consistent as K grows;
  biased low for finite K (Jensen) but exp() of it is unbiased for p(z). q(t|z) is a poor
  proposal on trained models (dead std units at the ReLU head's 1e-3 floor, ~38 % of the
  dimensions; a posterior narrower than, and offset from, p(t|z)), so r is fitted per z
  (``fit_proposal``): damped Gauss-Newton steps to the mode of p(z|t) p(t), p(z|t) linearised
  there, and each component of p(t) (one for N(0, I), the mixture's for LaDDer) given its
  Gaussian posterior and evidence under that linearisation (exact for a linear decoder; the
  ``PROPOSAL_COMPONENTS`` heaviest kept). r = (1 - b) sum_m pi_m Student-t_5(mode_m, P_m^-1)
  + b d(t|z), b = ``PROPOSAL_DEFENSIVE``, d the defensive mixture (1 - a) q(t|z) + a N(mean_t,
  diag(max(w std_t, f)^2)) (w = ``is_widen``, f = ``is_std_floor``, a = ``is_defensive``): its
  weights are at most 1/b those of d alone. Measured (docs/science.md, 'Evaluation'): on a nonlinear
  prior VAE with known log p(z) 5-8x the ESS of d alone, on the trained LaDDer of the CPU
  reference (seed 0) an ESS of 316 of K = 1,000 (d alone: 46) and a change of 0.02 nats from K/10
  to K (0.22). ``log_prob_diagnostics`` also returns the estimate from the first K/10 samples
  and the effective sample size.
- ``training_log_prob`` = ``prior_elbo(z, 1)``; ``log_prob_bound`` = ``prior_elbo(z,
  n_bound_samples)``; ``block_loss(z)`` = -mean ``prior_elbo(z.detach(), 1)`` (supplement B).
- ``sample(n)``: t ~ p(t), z = decode(t), the mean of p(z|t) (as the original generates).
"""

from __future__ import annotations

import math

import torch

from pipeline.layers import STD_ACTIVATION
from pipeline.priors.base import LOG_2PI, Option, OptionRelation, Prior, randn, register_prior, standard_normal_log_prob
from pipeline.priors.prior_vae import PriorVAE

# The importance-sampling proposal r(t|z) (module docstring): constants, not config knobs.
NEWTON_STEPS = 8          # damped Gauss-Newton steps from q(t|z)'s mean towards argmax_t p(z|t) p(t)
PROPOSAL_DF = 5           # Student-t degrees of freedom at the mode: heavier tails than the Laplace Gaussian
PROPOSAL_DEFENSIVE = 0.2  # weight of the defensive mixture around q(t|z) in r(t|z)
PROPOSAL_COMPONENTS = 8   # the mixture p(t)'s components whose linearised posteriors r(t|z) keeps, per z


@register_prior("hierarchical")
class HierarchicalPrior(Prior):
    """Prior VAE with p(t) = N(0, I). Options (defaults = paper scale):

    - ``d_t=8``: latent size of the prior VAE (per dataset in config: the headline numbers use
      8 / 16 / 32 on MNIST / Fashion / CelebA, the 2-D figures 2).
    - ``n_layers=5``, ``hidden=512``: hidden Linear+LeakyReLU(0.2) layers each side.
    - ``std_activation='softplus'``: q(t|z) std head, softplus + 1e-3 or the paper's 'relu' (ReLU + 1e-3).
    - ``sigma_min=0.05``, ``sigma_max=0.1``, ``sigma_init=0.1``: the clamped scalar std of p(z|t).
    - ``n_is_samples=1000``: K of the importance-sampling log p(z) used for evaluation.
    - ``is_chunk_size=100``: samples of t processed at once in ``log_prob`` (memory bound).
    - ``n_bound_samples=1``: samples of t in ``log_prob_bound`` (the reported ELBO term).
    - ``is_defensive=0.5``, ``is_widen=2.0``, ``is_std_floor=0.3``: the importance-sampling
      proposal (module docstring); ``is_defensive=0`` gives plain q(t|z).
    - ``warmup_epochs=0``, ``warmup_mode='standard_normal'``: the original's warm-up
      ('sg_pretraining', ``Prior.begin_epoch``): for W epochs the encoder is trained against
      N(0, I) and the prior VAE starts training in epoch W; 'prior_vae' keeps the prior VAE's
      term in the encoder's loss from the first step. Config sets W per dataset
      (``datasets.<d>.prior_options.warmup_epochs``: the original's 5 / 10 / 10).

    Not trained with the autoencoder: the trainer gives the prior VAE its own optimiser and
    calls ``block_loss`` (block coordinate ascent, supplement B); the encoder still gets
    gradients from ``training_log_prob`` in the data ELBO.
    """

    label = "Hierarchical"
    run_options = ("d_t",)
    scale_parameters = ("vae.sigma_in",)  # p(z|t)'s std: its own Adam in the original (training.prior_scale_learning_rate)
    option_specs = {
        "d_t": Option("int", minimum=1),
        "n_layers": Option("int", minimum=0),
        "hidden": Option("int", minimum=1),
        "std_activation": Option("str", choices=("relu", "softplus")),
        "sigma_min": Option("float", above=0),
        "sigma_max": Option("float", above=0),
        "sigma_init": Option("float"),  # clamped into [sigma_min, sigma_max]
        "n_is_samples": Option("int", minimum=1),
        "is_chunk_size": Option("int", minimum=1),
        "n_bound_samples": Option("int", minimum=1),
        "is_defensive": Option("float", minimum=0, below=1),
        "is_widen": Option("float", above=0),
        "is_std_floor": Option("float", minimum=0),
        "warmup_epochs": Option("int", minimum=0),
        "warmup_mode": Option("str", choices=("standard_normal", "prior_vae")),
    }
    option_relations = (OptionRelation("sigma_min", "<=", "sigma_max", why="the clamp range of p(z|t)'s std"),)

    exact = False
    trained_with_autoencoder = False
    # Share of r(t|z)'s draws from the defensive mixture around q(t|z) (module docstring). An
    # evaluation setting, not part of the model: experiments/likelihood_convergence sets it on an
    # instance to compare proposals.
    proposal_defensive: float = PROPOSAL_DEFENSIVE

    def __init__(
        self,
        d_z: int,
        d_t: int = 8,
        n_layers: int = 5,
        hidden: int = 512,
        std_activation: str = STD_ACTIVATION,
        sigma_min: float = 0.05,
        sigma_max: float = 0.1,
        sigma_init: float = 0.1,
        n_is_samples: int = 1000,
        is_chunk_size: int = 100,
        n_bound_samples: int = 1,
        is_defensive: float = 0.5,
        is_widen: float = 2.0,
        is_std_floor: float = 0.3,
        warmup_epochs: int = 0,
        warmup_mode: str = "standard_normal",
    ):
        super().__init__(d_z)
        if warmup_mode not in ("standard_normal", "prior_vae"):
            raise ValueError(f"warmup_mode must be 'standard_normal' or 'prior_vae', got {warmup_mode!r}")
        self.warmup_epochs, self.warmup_mode = int(warmup_epochs), warmup_mode
        if not 0.0 <= is_defensive < 1.0:
            raise ValueError(f"is_defensive must be in [0, 1), got {is_defensive}")
        self.d_t = d_t
        self.is_defensive, self.is_widen, self.is_std_floor = float(is_defensive), float(is_widen), float(is_std_floor)
        self.n_is_samples = int(n_is_samples)
        self.is_chunk_size = int(is_chunk_size)
        self.n_bound_samples = int(n_bound_samples)
        self.vae = PriorVAE(d_z, d_t, n_layers, hidden, std_activation, sigma_min, sigma_max, sigma_init)

    # -- hyper prior (overridden by LaDDer) ----------------------------------------------
    def hyper_log_prob(self, t: torch.Tensor) -> torch.Tensor:
        """log p(t): (..., d_t) -> (...)"""
        return standard_normal_log_prob(t)

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ p(t): (n, d_t)"""
        return randn((n, self.d_t), self.vae.sigma_in, generator)

    def expected_hyper_log_prob(self, t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor) -> torch.Tensor:
        """The E_q(t|z)[log p(t)] term of the ELBO, estimated from the shared samples t
        (S, B, d_t) of q(t|z) = N(mean_t, std_t^2) (both (B, d_t)) -> (B,)."""
        return self.hyper_log_prob(t).mean(0)

    # -- densities -----------------------------------------------------------------------
    def _draw_t(self, mean_t: torch.Tensor, std_t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised t ~ q(t|z) and log q(t|z): (n, B, d_t), (n, B)."""
        eps = randn((n, *mean_t.shape), mean_t)  # (n, B, d_t)
        t = mean_t + std_t * eps  # (n, B, d_t)
        log_q = -0.5 * (eps.pow(2) + LOG_2PI).sum(-1) - std_t.log().sum(-1)  # (n, B)
        return t, log_q

    def prior_elbo(self, z: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """L(z; alpha, beta) of Eq. 4 from n_samples reparameterised t: (B, d_z) -> (B,)"""
        mean_t, std_t = self.vae.encode(z)  # (B, d_t), (B, d_t)
        t, log_q = self._draw_t(mean_t, std_t, n_samples)  # (S, B, d_t), (S, B)
        log_p_z_t = self.vae.log_p_z_given_t(z, t)  # (S, B)
        return (log_p_z_t - log_q).mean(0) + self.expected_hyper_log_prob(t, mean_t, std_t)  # (B,)

    # -- the importance-sampling proposal r(t|z) (module docstring) ------------------------
    def proposal_noise_dim(self) -> int:
        """Standard normals one draw of r(t|z) consumes: t's own d_t, the Student-t's chi-square
        (PROPOSAL_DF) and three choices (Laplace or defensive, which component, widened or not)."""
        return self.d_t + PROPOSAL_DF + 3

    def _hyper_components(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """p(t) as a Gaussian mixture: log weights (M,), means (M, d_t), Cholesky factors (M, d_t, d_t)
        (LaDDer's fitted mixture; one standard normal component otherwise)."""
        mixture = getattr(self, "mixture", None)
        if mixture is None:
            d = self.d_t
            return like.new_zeros(1), like.new_zeros(1, d), torch.eye(d, dtype=like.dtype, device=like.device)[None]
        keep = mixture.weights > 0
        return (mixture.weights[keep].log().to(like), mixture.means[keep].to(like), mixture.scale_tril[keep].to(like))

    def _newton_step(self, z, t, comps) -> tuple[torch.Tensor, torch.Tensor]:
        """The Newton direction for log p(z|t) + log p(t) at t (B, d_t) with the Gauss-Newton
        precision J^T J / sigma^2 + sum_m r_m(t) Lambda_m (r: the components' responsibilities for
        t, Lambda_m their precisions; positive definite), and J (B, d_z, d_t)."""
        log_w, mu, tril = comps
        jac = torch.func.vmap(torch.func.jacfwd(self.vae.decode))(t)  # (B, d_z, d_t)
        inv_var = self.vae.sigma() ** -2
        eye = torch.eye(self.d_t, dtype=t.dtype, device=t.device)
        lam = torch.cholesky_inverse(tril)  # (M, d_t, d_t): precisions
        diff = mu - t[:, None]  # (B, M, d_t)
        white = torch.linalg.solve_triangular(tril, diff.unsqueeze(-1), upper=False).squeeze(-1)  # (B, M, d_t)
        resp = torch.softmax(log_w - 0.5 * white.pow(2).sum(-1) - tril.diagonal(dim1=-2, dim2=-1).log().sum(-1), -1)  # (B, M)
        prec = jac.transpose(1, 2) @ jac * inv_var + torch.einsum("bm,mij->bij", resp, lam) + 1e-6 * eye  # (B, d_t, d_t)
        grad = (jac.transpose(1, 2) @ (z - self.vae.decode(t)).unsqueeze(-1)).squeeze(-1) * inv_var \
            + torch.einsum("bm,mij,bmj->bi", resp, lam, diff)  # (B, d_t)
        return torch.linalg.solve(prec, grad.unsqueeze(-1)).squeeze(-1), jac

    def fit_proposal(self, z: torch.Tensor, newton_steps: int = NEWTON_STEPS) -> dict[str, torch.Tensor]:
        """r(t|z) for each z (B, d_z). Damped Gauss-Newton steps from q(t|z)'s mean towards the mode
        t* of p(z|t) p(t); there p(z|t) is linearised, z ~ N(J t + c, sigma^2 I), under which each
        component m of p(t) has a Gaussian posterior N(mode_m, P_m^-1), P_m = J^T J / sigma^2 +
        Lambda_m, and an evidence pi_m (exact for a linear decoder). The PROPOSAL_COMPONENTS
        components of largest pi_m are kept. Returns q(t|z)'s "mean_t", "std_t" (B, d_t),
        "log_pi" (B, C), "modes" (B, C, d_t), "scale_tril" (B, C, d_t, d_t) of P_m^-1 and "gain"
        (B, C, d_t, d_z) = P_m^-1 J^T / sigma^2, how each mode moves with z."""
        mean_t, std_t = self.vae.encode(z)  # (B, d_t) each
        comps = self._hyper_components(z)
        t = mean_t
        f = self._log_joint(z, t)  # (B,)
        for _ in range(newton_steps):
            step, _ = self._newton_step(z, t, comps)
            done = torch.zeros_like(f, dtype=torch.bool)
            for scale in (1.0, 0.5, 0.25, 0.125):  # per z, the longest step that does not lower log p(z|t) p(t)
                cand = t + scale * step
                f_cand = self._log_joint(z, cand)
                take = ~done & (f_cand >= f)
                t, f, done = torch.where(take[:, None], cand, t), torch.where(take, f_cand, f), done | take
        _, jac = self._newton_step(z, t, comps)
        log_w, mu, tril = comps
        inv_var = self.vae.sigma() ** -2
        c = self.vae.decode(t) - (jac @ t.unsqueeze(-1)).squeeze(-1)  # (B, d_z): z ~ J t + c near t*
        lam = torch.cholesky_inverse(tril)  # (M, d_t, d_t)
        prec = (jac.transpose(1, 2) @ jac * inv_var)[:, None] + lam  # (B, M, d_t, d_t)
        # float64 for the factorisations: with sigma = 0.05, J^T J / sigma^2 can be ill-conditioned in float32
        chol_prec = torch.linalg.cholesky(prec.double())
        rhs = ((jac.transpose(1, 2) @ (z - c).unsqueeze(-1)) * inv_var)[:, None] + lam @ mu.unsqueeze(-1)  # (B, M, d_t, 1)
        modes = torch.cholesky_solve(rhs.double(), chol_prec).squeeze(-1).to(z.dtype)  # (B, M, d_t)
        # evidence: p(z) = p(z|t) p(t) / p(t|z) at t = mode_m, all Gaussian under the linearisation
        resid = z[:, None] - c[:, None] - (jac[:, None] @ modes.unsqueeze(-1)).squeeze(-1)  # (B, M, d_z)
        white = torch.linalg.solve_triangular(tril, (modes - mu).unsqueeze(-1), upper=False).squeeze(-1)  # (B, M, d_t)
        log_pi = (log_w - 0.5 * resid.pow(2).sum(-1) * inv_var - 0.5 * white.pow(2).sum(-1)
                  - tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) - chol_prec.diagonal(dim1=-2, dim2=-1).log().sum(-1).to(z.dtype))  # (B, M)
        keep = log_pi.topk(min(PROPOSAL_COMPONENTS, log_pi.shape[1]), -1).indices  # (B, C)
        pick = lambda a: a.gather(1, keep.view(*keep.shape, *([1] * (a.dim() - 2))).expand(*keep.shape, *a.shape[2:]))  # noqa: E731
        cov = torch.cholesky_inverse(pick(chol_prec))  # (B, C, d_t, d_t), float64
        gain = (cov @ jac.transpose(1, 2)[:, None].double()).to(z.dtype) * inv_var  # (B, C, d_t, d_z)
        return {"mean_t": mean_t, "std_t": std_t, "log_pi": torch.log_softmax(pick(log_pi), -1), "modes": pick(modes),
                "scale_tril": torch.linalg.cholesky(cov).to(z.dtype), "gain": gain}

    def _log_joint(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p(z|t) + log p(t): z (B, d_z), t (B, d_t) -> (B,)"""
        return self.vae.log_p_z_given_t(z, t) + self.hyper_log_prob(t)

    def _widened(self, std_t: torch.Tensor) -> torch.Tensor:
        return torch.maximum(std_t * self.is_widen, torch.full_like(std_t, self.is_std_floor))

    def draw_proposal(self, proposal: dict[str, torch.Tensor], noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t ~ r(t|z) from standard normal ``noise`` (n, B, proposal_noise_dim()) and log r(t|z):
        (n, B, d_t), (n, B). Also the t-proposal of the joint (z, t) log-likelihood estimate."""
        d = self.d_t
        eps, chi = noise[..., :d], noise[..., d:d + PROPOSAL_DF]  # (n, B, d_t), (n, B, PROPOSAL_DF)
        u = torch.special.ndtr(noise[..., d + PROPOSAL_DF:])  # (n, B, 3): uniforms
        cdf = proposal["log_pi"].exp().cumsum(-1)  # (B, C)
        comp = torch.searchsorted(cdf.expand(u.shape[0], *cdf.shape).contiguous(), u[..., 1:2].contiguous()).clamp_max(cdf.shape[-1] - 1)  # (n, B, 1)
        mode = proposal["modes"].expand(u.shape[0], -1, -1, -1).gather(2, comp[..., None].expand(-1, -1, 1, d)).squeeze(2)  # (n, B, d_t)
        tril = proposal["scale_tril"].expand(u.shape[0], -1, -1, -1, -1).gather(2, comp[..., None, None].expand(-1, -1, 1, d, d)).squeeze(2)
        radius = (PROPOSAL_DF / chi.pow(2).sum(-1, keepdim=True)).sqrt()  # (n, B, 1): sqrt(df / chi2_df)
        t_laplace = mode + (tril @ eps.unsqueeze(-1)).squeeze(-1) * radius  # (n, B, d_t)
        mean_t, std_t = proposal["mean_t"], proposal["std_t"]
        t_q = mean_t + torch.where(u[..., 2:] < self.is_defensive, self._widened(std_t), std_t) * eps  # (n, B, d_t)
        t = torch.where(u[..., :1] < self.proposal_defensive, t_q, t_laplace)
        return t, self.proposal_log_prob(t, proposal)

    def proposal_log_prob(self, t: torch.Tensor, proposal: dict[str, torch.Tensor]) -> torch.Tensor:
        """log r(t|z): t (n, B, d_t) -> (n, B)"""
        mean_t, std_t, d = proposal["mean_t"], proposal["std_t"], self.d_t

        def log_normal(std):
            return -0.5 * (((t - mean_t) / std).pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)  # (n, B)

        log_q = log_normal(std_t)
        if self.is_defensive > 0:
            log_q = torch.logaddexp(math.log1p(-self.is_defensive) + log_q, math.log(self.is_defensive) + log_normal(self._widened(std_t)))
        tril = proposal["scale_tril"]  # (B, C, d_t, d_t)
        inv = torch.linalg.solve_triangular(tril, torch.eye(d, dtype=t.dtype, device=t.device).expand_as(tril), upper=False)
        white = torch.einsum("bcij,nbcj->nbci", inv, t[:, :, None] - proposal["modes"])  # (n, B, C, d_t)
        nu = float(PROPOSAL_DF)
        log_t = (math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - 0.5 * d * math.log(nu * math.pi)
                 - tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) - 0.5 * (nu + d) * torch.log1p(white.pow(2).sum(-1) / nu))  # (n, B, C)
        log_laplace = torch.logsumexp(proposal["log_pi"] + log_t, -1)  # (n, B)
        return torch.logaddexp(math.log1p(-self.proposal_defensive) + log_laplace, math.log(self.proposal_defensive) + log_q)

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """Importance-sampling log p(z) with K = n_samples or n_is_samples: (B, d_z) -> (B,)"""
        return self.log_prob_diagnostics(z, n_samples)["log_prob"]

    def log_prob_diagnostics(self, z: torch.Tensor, n_samples: int | None = None) -> dict[str, torch.Tensor]:
        """The IS estimate at K, the estimate from its first K/10 samples, and the effective
        sample size (sum w)^2 / sum w^2, each (B,)."""
        k_total = int(n_samples or self.n_is_samples)
        proposal = self.fit_proposal(z)
        log_w = []
        for start in range(0, k_total, self.is_chunk_size):
            k = min(self.is_chunk_size, k_total - start)
            t, log_r = self.draw_proposal(proposal, randn((k, len(z), self.proposal_noise_dim()), z))  # (k, B, d_t), (k, B)
            log_w.append(self.vae.log_p_z_given_t(z, t) + self.hyper_log_prob(t) - log_r)  # (k, B)
        log_w = torch.cat(log_w)  # (K, B)
        k_tenth = max(1, k_total // 10)
        return {
            "log_prob": torch.logsumexp(log_w, dim=0) - math.log(k_total),
            "log_prob_tenth": torch.logsumexp(log_w[:k_tenth], dim=0) - math.log(k_tenth),
            "ess": torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)),
        }

    def log_prob_bound(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior_elbo(z, self.n_bound_samples)

    def training_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior_elbo(z, 1)

    def block_loss(self, z: torch.Tensor) -> torch.Tensor:
        return -self.prior_elbo(z.detach(), 1).mean()

    def after_step(self) -> None:
        # sigma_in is clipped like the original's; project it so it keeps receiving gradient.
        self.vae.clamp_sigma_()

    # -- generation ----------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean of p(z|t), t ~ p(t): (n, d_z)"""
        return self.vae.decode(self.sample_t(n, generator))
