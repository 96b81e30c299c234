"""Small layers shared by the networks of supplement E: the data VAEs and the prior VAE."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STD_FLOOR = 1e-3  # the original code's "+ 1e-3" on every std head
# The std heads' activation when none is named: the workflow's (training.std_activation's schema
# default), so a network built in a test or an experiment is the one the pipeline trains. The
# paper's ReLU leaves dead units that collapse the VampPrior (experiments/vampprior_collapse).
STD_ACTIVATION = "softplus"


class StdHead(nn.Module):
    """Linear layer giving a positive standard deviation.

    'relu' is the paper's head (supplement E.1: FC -> ReLU, plus the original code's 1e-3);
    'softplus' avoids dead units (a ReLU head that goes negative never recovers).
    """

    def __init__(self, d_in: int, d_out: int, activation: str = STD_ACTIVATION):
        super().__init__()
        if activation not in ("relu", "softplus"):
            raise ValueError(f"std_activation must be 'relu' or 'softplus', got {activation!r}")
        self.linear = nn.Linear(d_in, d_out)
        self.activation = F.relu if activation == "relu" else F.softplus

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(h)) + STD_FLOOR


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """TensorFlow's SYMMETRIC padding (mirror including the edge pixel) on H and W.

    torch's 'reflect' excludes the edge pixel, so build it from flipped slices. (B,C,H,W)
    """
    top, bottom = x[:, :, :pad].flip(2), x[:, :, -pad:].flip(2)
    x = torch.cat([top, x, bottom], dim=2)
    left, right = x[:, :, :, :pad].flip(3), x[:, :, :, -pad:].flip(3)
    return torch.cat([left, x, right], dim=3)


def output_activation(name: str) -> nn.Module:
    """The decoder's last activation: the Laplace mean.

    'linear' (our default): unconstrained mean; images are clamped to [0, 1] only when
    quantised for display and FID. 'sigmoid' is supplement E.1's. Measured here (mnist5k,
    Adam 5e-4, batch 128): with sigmoid the L1 loss drives every logit to -inf (the all-black
    median image), the output saturates at 0.0 and stays there after 300 steps; the linear
    head leaves that plateau (MAE 0.132 -> 0.114 by step 300) and keeps learning. 'relu' is
    the original TensorFlow code's (codes/models.py): non-negative, unbounded above.
    """
    if name == "linear":
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"decoder_output must be 'linear', 'sigmoid' or 'relu', got {name!r}")
