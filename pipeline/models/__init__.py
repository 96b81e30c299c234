"""Encoders, decoders (supplement E) and the VAE that ties them to a prior."""

from pipeline.models.vae import VAE, build_vae

__all__ = ["VAE", "build_vae"]
