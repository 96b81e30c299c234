"""Seed mixing: the one way a run's seed becomes the seed of one of its random streams.

A run has one seed (``run.seeds``); everything random in it draws from a generator seeded by
``derive_seed(seed, *stream)``, so image k's noise, sample block b and epoch e's order are the
same whatever the batch size, the device or the order jobs run in. numpy's ``SeedSequence``
hashes the words, so neighbouring seeds or indices give unrelated streams (``seed * C + k``
would make run 1's stream k the same as run 0's stream C + k).

The stream tags keep purposes apart: word lists of different lengths or tags never share a
stream. ``likelihood.image_seed(seed, index)`` is ``derive_seed(seed, index)`` (no tag: the
numbers of every log-likelihood file written so far).
"""

from __future__ import annotations

import numpy as np

# Stream tags (the second word): one per purpose that draws per block of a run.
SAMPLE_BLOCKS = 1   # pipeline.evaluation.generate: generated images, block b of SAMPLE_BLOCK
EPOCH_ORDER = 2     # training: the minibatch order of epoch e
PRIOR_BLOCKS = 3    # training: a prior's between-epoch fit, block b
TRAINING_SCALE = 4  # training: the end-of-training Laplace scale's noise, block b of SCALE_BLOCK


def derive_seed(seed: int, *stream: int) -> int:
    """A 63-bit torch seed for the stream ``stream`` (integers) of a run seeded ``seed``."""
    words = np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(2, np.uint32)
    return (int(words[0]) << 31 | int(words[1]) >> 1) & (2**63 - 1)
