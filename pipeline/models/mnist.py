"""MNIST / Fashion-MNIST encoder and depth-to-space decoder (supplement E.1)."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.layers import STD_ACTIVATION, StdHead, output_activation, symmetric_pad


class MnistEncoder(nn.Module):
    """x (B,1,28,28) -> symmetric pad 32x32 -> 3 stride-2 convs (16, 64, 256) -> FC64 -> (mean, std)."""

    input_shape = (1, 28, 28)

    def __init__(self, d_z: int, std_activation: str = STD_ACTIVATION):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),    # (B,16,16,16)
            nn.Conv2d(16, 64, 3, stride=2, padding=1), nn.ReLU(),   # (B,64,8,8)
            nn.Conv2d(64, 256, 3, stride=2, padding=1), nn.ReLU(),  # (B,256,4,4)
        )
        self.fc = nn.Linear(256 * 4 * 4, 64)
        self.mean = nn.Linear(64, d_z)
        self.std = StdHead(64, d_z, std_activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(symmetric_pad(x, 2)).flatten(1)  # (B,4096)
        h = self.fc(h)                                   # (B,64)
        return self.mean(h), self.std(h)                 # (B,d_z), (B,d_z)


class MnistDecoder(nn.Module):
    """z -> FC4096 -> depth-to-space x4, x2, x2, x2 with 3x3 convs -> 5x5 valid conv -> output (B,1,28,28).

    The supplement's last layer reads Conv_16 5x5 followed by a reshape to 28x28x1, which
    cannot hold 16 channels; we use 1 output channel (a typo in the supplement).
    PixelShuffle orders channels differently from TF's depth_to_space; for a learned
    network this is only a permutation of the preceding layer's filters.
    """

    def __init__(self, d_z: int, output: str = "linear"):
        super().__init__()
        self.fc = nn.Linear(d_z, 4096)
        self.body = nn.Sequential(
            nn.PixelShuffle(4), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),  # (B,256,4,4)
            nn.PixelShuffle(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),    # (B,64,8,8)
            nn.PixelShuffle(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),    # (B,16,16,16)
            nn.PixelShuffle(2), nn.Conv2d(4, 1, 5), output_activation(output),  # (B,4,32,32) -> (B,1,28,28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(-1, 4096, 1, 1)  # (B,4096,1,1)
        return self.body(h)


# The original TensorFlow code's Fashion-MNIST network (codes/models.py, MNISTModel_fashion, with
# num_hidden_units = 256), which is wider than the network supplement E.1 says is used for both
# datasets. Kept as architecture 'mnist_code' to test whether it explains the paper's lower
# Fashion-MNIST reconstruction error (reference/README.md, "The reconstruction gap"). Leaky ReLU with TF's slope.
# Differences left: TF's 'same' padding for stride 2 pads only after; Xavier initialisation.
LEAK = 0.2


def _leaky(*layers: nn.Module) -> list[nn.Module]:
    return [m for layer in layers for m in (layer, nn.LeakyReLU(LEAK))]


class MnistCodeEncoder(nn.Module):
    """x -> symmetric pad 32x32 -> convs 64, 64, 128 (stride 2), 128 (valid) -> FC256 -> (mean, std)."""

    input_shape = (1, 28, 28)

    def __init__(self, d_z: int, std_activation: str = STD_ACTIVATION):
        super().__init__()
        self.convs = nn.Sequential(*_leaky(
            nn.Conv2d(1, 64, 3, stride=2, padding=1),     # (B,64,16,16)
            nn.Conv2d(64, 64, 3, stride=2, padding=1),    # (B,64,8,8)
            nn.Conv2d(64, 128, 3, stride=2, padding=1),   # (B,128,4,4)
            nn.Conv2d(128, 128, 3),                       # (B,128,2,2)
            nn.Flatten(), nn.Linear(512, 256),            # (B,256)
        ))
        self.mean = nn.Linear(256, d_z)
        self.std = StdHead(256, d_z, std_activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(symmetric_pad(x, 2))
        return self.mean(h), self.std(h)


class MnistCodeDecoder(nn.Module):
    """z -> FC256 -> (depth-to-space x2 -> conv 256) x4 -> depth-to-space x2 -> 5x5 valid conv (B,1,28,28)."""

    def __init__(self, d_z: int, output: str = "linear"):
        super().__init__()
        self.fc = nn.Sequential(*_leaky(nn.Linear(d_z, 256)))
        self.body = nn.Sequential(
            nn.PixelShuffle(2), *_leaky(nn.Conv2d(64, 256, 1)),             # (B,256,2,2)
            nn.PixelShuffle(2), *_leaky(nn.Conv2d(64, 256, 3, padding=1)),  # (B,256,4,4)
            nn.PixelShuffle(2), *_leaky(nn.Conv2d(64, 256, 3, padding=1)),  # (B,256,8,8)
            nn.PixelShuffle(2), *_leaky(nn.Conv2d(64, 256, 3, padding=1)),  # (B,256,16,16)
            nn.PixelShuffle(2), nn.Conv2d(64, 1, 5), output_activation(output),  # (B,64,32,32) -> (B,1,28,28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, 256, 1, 1))
