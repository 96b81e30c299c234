"""Priors p(z). Importing this package registers every built-in prior.

To add one: write ``pipeline/priors/<name>.py`` with a ``Prior`` subclass decorated by
``@register_prior("<name>")``, import it below, and name it in a method of ``config/*.yaml``.
The registry is the only list of priors: config validation, tables and the contract tests read it.
"""

from pipeline.priors.base import (PRIORS, Option, OptionRelation, Prior, build_prior, prior_label, prior_option_defaults,
                                  prior_option_names, register_prior)
from pipeline.priors import normal  # noqa: F401  (registers "normal")
from pipeline.priors import vampprior  # noqa: F401  (registers "vampprior")
from pipeline.priors import gmm  # noqa: F401  (registers "gmm")
from pipeline.priors import mog  # noqa: F401  (registers "mog")
from pipeline.priors import realnvp  # noqa: F401  (registers "realnvp")
from pipeline.priors import hierarchical  # noqa: F401  (registers "hierarchical")
from pipeline.priors import ladder  # noqa: F401  (registers "ladder")

__all__ = ["PRIORS", "Option", "OptionRelation", "Prior", "build_prior", "prior_label", "prior_option_defaults", "prior_option_names",
           "register_prior"]
