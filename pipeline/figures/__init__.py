"""The paper's figures, one module per kind, all drawn in one style (``style.py``):

- ``samples``: per-run sample grids and supplement Figures 1-5;
- ``density``: Figure 2 (aggregate posterior and post-hoc fitted priors on a 2-D latent grid);
- ``reconstructions``: Figure 3 (test images, reconstructions, generations per prior);
- ``latent2d``: Figure 4 (2-D latents coloured by class, mixture components, ARI/NMI);
- ``interpolation``: Figures 5, 6 (shortest likely path).

``commands.register_commands`` adds their command-line entry points.
"""

from pipeline.figures.samples import image_grid, save_sample_grid

__all__ = ["image_grid", "save_sample_grid"]
