"""The contract every prior p(z) satisfies, and the registry that names them.

A prior is an ``nn.Module`` owned by the VAE. The trainer, the evaluator and the sampler talk
to it only through the methods below, so adding a prior means writing one module with one
``Prior`` subclass and decorating it with ``@register_prior("name")``; config then selects it
with ``methods.<method>.prior: name``.

Contract (shapes: B = batch, d_z = latent size):

- ``log_prob(z) -> (B,)``: log p(z). Exact where a closed form exists (``exact = True``),
  otherwise a consistent estimator (importance sampling for the generative priors), with the
  number of samples chosen by the caller through ``n_samples``.
- ``log_prob_bound(z) -> (B,)``: a lower bound on log p(z) that the reported ELBO uses
  (LaDDer Eq. 7/8). Equals ``log_prob`` for priors with an exact density.
- ``training_log_prob(z) -> (B,)``: the term that stands for log p(z) (Eq. 2, term 3) in the
  data-VAE loss. Gradients flow to z (the encoder) and, when ``trained_with_autoencoder``, to
  the prior's own parameters.
- ``sample(n, generator) -> (n, d_z)``: draws from p(z) (for generative priors the mean of
  p(z|t), as the original code generates).
- ``trained_with_autoencoder``: the prior's parameters join the autoencoder's optimiser
  (VampPrior pseudo-inputs, gradient-trained mixture). Otherwise, if it has parameters, the
  trainer gives it an optimiser of its own and calls ``block_loss(z)`` with z detached after
  each autoencoder step: the block coordinate ascent of supplement B.
- ``after_step()``: called after every optimiser step that touched the prior's parameters
  (projections such as clamping a bounded scale).
- ``fit(z, epoch) -> dict``: between-epoch refit from ``fit_samples`` posterior samples of the
  training set (EM for the GMM, the Dirichlet-process mixture for LaDDer). Returns numbers
  for the training log. ``fit_samples = 0`` means the trainer never calls it.
- ``bind_encoder(encoder)``: called once by the VAE; VampPrior keeps the (shared) encoder.
- ``health() -> list[str]``: problems to report in the training log (collapse, NaN).
- ``label``: how tables and figures name the prior (falls back to the registry name).
- ``run_options``: constructor options that config fills from the dataset block (``d_t``)
  or the run (``seed``) when a method leaves them unset.
- ``option_specs``: every constructor option but d_z with what it accepts (``Option``), and
  ``option_relations`` between them: config validation checks values against these before
  any job runs, so a new constructor option needs a declaration (a contract test says which).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class Prior(nn.Module):
    """Base class: a standard-normal-free skeleton; subclasses fill in the density."""

    label: str | None = None  # table/figure label; None -> the registry name
    short_label: str | None = None  # figures' legends and titles where it differs from label
    exact: bool = True
    trained_with_autoencoder: bool = False
    fit_samples: int = 0
    run_options: tuple[str, ...] = ()
    # every constructor option but d_z -> what it accepts (config validation reads it; see Option)
    option_specs: dict[str, "Option"] = {}
    # constraints between options, checked on a run's resolved options (see OptionRelation)
    option_relations: tuple["OptionRelation", ...] = ()

    def __init__(self, d_z: int):
        super().__init__()
        self.d_z = d_z

    # -- density -------------------------------------------------------------------------
    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_bound(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob(z)

    def training_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob(z)

    # -- generation ----------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    # -- training hooks ------------------------------------------------------------------
    def bind_encoder(self, encoder: nn.Module) -> None:
        """Most priors do not need the encoder."""

    def block_loss(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no block step of its own")

    def after_step(self) -> None:
        """Most priors have nothing to project."""

    def fit(self, z: torch.Tensor, epoch: int) -> dict:
        return {}

    # -- warm-up (the original code's 'sg_pretraining') -----------------------------------
    # Priors with a warm-up set ``warmup_epochs`` W from their options. With ``warmup_mode``
    # "standard_normal" (the original's protocol) the encoder is trained against N(0, I) on z
    # for the first W epochs, with no term of the prior in its loss; the prior's own parameters
    # start training in epoch W (the last warm-up epoch, as the original's ``cur_epoch >
    # sg_pretraining - 1``), so the first refit at its end sees a trained prior VAE; from epoch
    # W + 1 the encoder sees the prior. "prior_vae" keeps the prior's term in the loss from the
    # first step (this repository's protocol before issue 18). W = 0: no warm-up.
    warmup_epochs: int = 0
    warmup_mode: str = "standard_normal"
    warming_up: bool = False  # set by begin_epoch: the data VAE's loss uses log N(z; 0, I)
    # names of parameters that get the prior-scale learning rate (training.prior_scale_learning_rate)
    scale_parameters: tuple[str, ...] = ()

    def begin_epoch(self, epoch: int) -> None:
        """Called by the trainer before epoch ``epoch`` (0-based)."""
        self.warming_up = self.warmup_mode == "standard_normal" and epoch < self.warmup_epochs

    def trains_in_epoch(self, epoch: int) -> bool:
        """Whether the prior's own parameters are updated in epoch ``epoch`` (0-based)."""
        return self.warmup_mode != "standard_normal" or epoch >= self.warmup_epochs - 1

    def loss_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """The data VAE's log p(z) term now: N(0, I) while warming up, else ``training_log_prob``."""
        return standard_normal_log_prob(z) if self.warming_up else self.training_log_prob(z)

    def fit_summary(self) -> dict:
        """Numbers describing a fitted prior for metrics.json (the mixtures' component counts)."""
        return {}

    def health(self) -> list[str]:
        bad = [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
        return [f"non-finite values in prior parameter {n}" for n in bad]

    @property
    def has_block_step(self) -> bool:
        return not self.trained_with_autoencoder and any(True for _ in self.parameters())


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last axis. (B, d) -> (B,)"""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)


def diagonal_normal_log_prob(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(log_var))) summed over the last axis; broadcasts."""
    return -0.5 * (((z - mean) ** 2) * torch.exp(-log_var) + log_var + LOG_2PI).sum(-1)


def randn(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal of ``shape`` with like's dtype on like's device, drawn on the
    generator's device (a CPU generator then gives the same numbers on any device)."""
    return torch.randn(shape, generator=generator, device=generator_device(generator, like), dtype=like.dtype).to(like.device)


def generator_device(generator: torch.Generator | None, like: torch.Tensor) -> torch.device:
    return generator.device if generator is not None else like.device


# -- option declarations ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Option:
    """What one constructor option accepts, declared beside the prior (``option_specs``) so that
    config validation checks a value before any job builds the prior.

    ``kind`` is "int", "float" (an int is accepted too) or "str"; a range is given by
    ``minimum`` / ``maximum`` (inclusive) or ``above`` / ``below`` (exclusive); ``choices``
    lists the accepted strings; ``nullable`` admits ``null``.
    """

    kind: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def accepts(self, value) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool):  # YAML true/false are ints to Python; never a number here
            return False
        if self.kind == "str":
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if not isinstance(value, int if self.kind == "int" else (int, float)) or not math.isfinite(value):
            return False
        return ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above) and (self.below is None or value < self.below))

    def describe(self) -> str:
        """What is accepted, in words: "an integer >= 1", "one of 'relu', 'softplus'"."""
        if self.kind == "str":
            text = "one of " + ", ".join(map(repr, self.choices)) if self.choices else "a string"
        else:
            text = {"int": "an integer", "float": "a number"}[self.kind]
            bounds = [f"{op} {bound:g}" for op, bound in ((">=", self.minimum), (">", self.above), ("<=", self.maximum), ("<", self.below))
                      if bound is not None]
            text += (" " + " and ".join(bounds)) if bounds else ""
        return text + (" or null" if self.nullable else "")


@dataclasses.dataclass(frozen=True)
class OptionRelation:
    """A declared constraint between two options of one prior: ``left op right + offset``, checked
    on a run's resolved options (defaults, method, dataset); skipped where either value is null."""

    left: str
    op: str  # "<=", "<", ">=" or ">"
    right: str
    offset: float = 0
    why: str = ""

    def holds(self, options: dict) -> bool:
        a, b = options.get(self.left), options.get(self.right)
        if a is None or b is None:
            return True
        b = b + self.offset
        return {"<=": a <= b, "<": a < b, ">=": a >= b, ">": a > b}[self.op]

    def describe(self) -> str:
        offset = f" {'+' if self.offset > 0 else '-'} {abs(self.offset):g}" if self.offset else ""
        return f"{self.left} {self.op} {self.right}{offset}" + (f" ({self.why})" if self.why else "")


# -- registry ----------------------------------------------------------------------------
PRIORS: dict[str, type[Prior]] = {}


def register_prior(name: str) -> Callable[[type[Prior]], type[Prior]]:
    """Class decorator: make a Prior subclass available to config as ``prior: name``."""

    def decorate(cls: type[Prior]) -> type[Prior]:
        if not (isinstance(cls, type) and issubclass(cls, Prior)):
            raise TypeError(f"register_prior({name!r}): {cls!r} is not a subclass of pipeline.priors.Prior")
        if not name.isidentifier():
            raise ValueError(f"register_prior: prior name {name!r} must be a Python identifier")
        if name in PRIORS and PRIORS[name] is not cls:
            raise ValueError(f"register_prior: a prior named {name!r} is already registered ({PRIORS[name].__name__})")
        PRIORS[name] = cls
        cls.registry_name = name
        return cls

    return decorate


def prior_option_names(cls: type[Prior]) -> set[str]:
    """The options a prior accepts in config: its constructor's keyword arguments but d_z,
    following ``**kwargs`` up the class tree (LaDDer passes the hierarchical prior's on)."""
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass in (Prior, nn.Module, object):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.name not in ("self", "d_z") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def prior_option_defaults(cls: type[Prior]) -> dict:
    """The constructor defaults of the options in ``prior_option_names`` (up the class tree)."""
    import inspect

    defaults: dict = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass not in (Prior, nn.Module, object):
            defaults.update({p.name: p.default for p in inspect.signature(klass.__init__).parameters.values()
                             if p.default is not p.empty and p.name != "d_z"})
    return {key: value for key, value in defaults.items() if key in prior_option_names(cls)}


def prior_label(name: str) -> str:
    """A registered prior's label for tables and figures (its ``label``, else its name)."""
    cls = PRIORS.get(name)
    return (cls.label if cls is not None and cls.label else name)


def build_prior(name: str, d_z: int, options: dict) -> Prior:
    """Instantiate a registered prior; ``options`` are the method's config keys for it."""
    if name not in PRIORS:
        raise KeyError(f"unknown prior {name!r}; registered priors: {', '.join(sorted(PRIORS))}")
    return PRIORS[name](d_z=d_z, **options)
