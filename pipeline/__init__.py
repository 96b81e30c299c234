"""LaDDer reproduction: data, models, priors, training, evaluation, tables and figures.

The Snakemake workflow (``Snakefile``, ``workflow/``) calls this package through
``python -m pipeline <command>``; everything it does is importable and testable alone.
"""

__version__ = "0.1.0"
