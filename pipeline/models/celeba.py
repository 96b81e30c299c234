"""CelebA-128 encoder and style-modulated decoder (supplement E.2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.layers import STD_ACTIVATION, StdHead, output_activation

LEAK = 0.2  # TF's default leaky-ReLU slope, used by the original code


class CelebaEncoder(nn.Module):
    """x (B,3,128,128) -> 5 stride-2 convs (32..512) -> 3x3 stride-2 valid conv 1024 -> FC512 -> (mean, std)."""

    input_shape = (3, 128, 128)

    def __init__(self, d_z: int, std_activation: str = STD_ACTIVATION):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (32, 64, 128, 256, 512):                       # 128 -> 4 pixels
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(LEAK)]
            c_in = c_out
        layers += [nn.Conv2d(512, 1024, 3, stride=2), nn.LeakyReLU(LEAK)]  # (B,1024,1,1)
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, 512)
        self.mean = nn.Linear(512, d_z)
        self.std = StdHead(512, d_z, std_activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x).flatten(1))  # (B,512)
        return self.mean(h), self.std(h)


class StyleBlock(nn.Module):
    """Upsample x2 -> 3x3 conv -> instance norm -> style module -> leaky ReLU.

    Style module (supplement E.2): a fully connected layer maps the style code w to 2C values
    (a, b); the output is a + b * x, "summing the first half channels with the original
    channel value weighted [by the] second half". The leaky ReLU after it is our assumption
    (the supplement lists none; StyleGAN has one per layer, and without it the synthesis
    network would be nearly linear).
    """

    def __init__(self, c_in: int, c_out: int, w_dim: int = 512):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.InstanceNorm2d(c_out)
        self.style = nn.Linear(w_dim, 2 * c_out)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")))  # (B,C,2H,2W)
        shift, scale = self.style(w)[:, :, None, None].chunk(2, dim=1)            # (B,C,1,1) each
        return F.leaky_relu(shift + scale * x, LEAK)


class CelebaDecoder(nn.Module):
    """z -> 8 x (FC512, leaky ReLU) = w -> 7 style blocks 1 -> 128 px -> conv, leaky ReLU, conv3 -> output.

    E.2 lists no output activation; ``output`` is the same option as for E.1 (default linear).
    """

    channels = (512, 512, 512, 256, 256, 128, 128)  # at 2, 4, ..., 128 pixels

    def __init__(self, d_z: int, output: str = "linear"):
        super().__init__()
        mapping, d_in = [], d_z
        for _ in range(8):
            mapping += [nn.Linear(d_in, 512), nn.LeakyReLU(LEAK)]
            d_in = 512
        self.mapping = nn.Sequential(*mapping)
        c_in, blocks = 512, []
        for c_out in self.channels:
            blocks.append(StyleBlock(c_in, c_out))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(LEAK), nn.Conv2d(128, 3, 3, padding=1), output_activation(output))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)       # (B,512)
        x = w[:, :, None, None]   # (B,512,1,1)
        for block in self.blocks:
            x = block(x, w)       # doubles H, W
        return self.to_rgb(x)     # (B,3,128,128)
