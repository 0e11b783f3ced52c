#!/usr/bin/env python3
"""torch_fnet.py -- PyTorch CPU reference (2 threads) for Lucid's `fnet3d_train` bench case.

Run:  python3 scripts/torch_fnet.py            (prints JSON lines to stdout)
      python3 scripts/torch_fnet.py --quick    (fewer repeats, for smoke tests)

The network is Lucid's `UNetConfig.fnet3D` (Sources/LucidNN/UNet.swift), layer for layer and with
the same parameter names, so the parameter counts can be compared:
  level i (i = 0..3, c_i = 32 * 2**i channels):
    d{i}   : 2 x [Conv3d(3, pad 1, bias) + BatchNorm3d + ReLU]      c_{i-1} (or 1) -> c_i -> c_i
    down{i}: Conv3d(c_i, c_i, kernel 2, stride 2, bias) + BatchNorm3d + ReLU
  mid      : 2 x [Conv3d(3) + BN + ReLU]                            256 -> 512 -> 512
  level i going up (i = 3..0):
    up{i}  : ConvTranspose3d(c_{i+1}, c_i, kernel 2, stride 2, bias) + BN + ReLU
    u{i}   : cat([up, skip_i], channels), 2 x [Conv3d(3) + BN + ReLU] 2 c_i -> c_i -> c_i
  out      : Conv3d(32, 1, 3, pad 1, bias)
One training step: zero_grad, forward, MSE against a fixed target, backward, Adam(lr 1e-3).step,
on a fixed batch of 4 uniform-noise patches 1x32x64x64 (as `lucid bench --case fnet3d_train`).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


class Block(nn.Module):
    """Convolution (or transposed convolution), BatchNorm3d, ReLU: Lucid's ConvBlock."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm3d(conv.out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def level(channels):
    return nn.Sequential(*[Block(nn.Conv3d(a, b, 3, padding=1)) for a, b in zip(channels, channels[1:])])


class FnetUNet(nn.Module):
    def __init__(self, depth=4, filters=32, cin=1, cout=1):
        super().__init__()
        self.depth = depth
        ch = [filters << i for i in range(depth + 1)]
        for i in range(depth):
            setattr(self, f"d{i}", level([cin if i == 0 else ch[i - 1], ch[i], ch[i]]))
            setattr(self, f"down{i}", Block(nn.Conv3d(ch[i], ch[i], 2, stride=2)))
        self.mid = level([ch[depth - 1], ch[depth], ch[depth]])
        for i in reversed(range(depth)):
            setattr(self, f"up{i}", Block(nn.ConvTranspose3d(ch[i + 1], ch[i], 2, stride=2)))
            setattr(self, f"u{i}", level([2 * ch[i], ch[i], ch[i]]))
        self.out = nn.Conv3d(ch[0], cout, 3, padding=1)

    def forward(self, x):
        skips = []
        for i in range(self.depth):
            x = getattr(self, f"d{i}")(x)
            skips.append(x)
            x = getattr(self, f"down{i}")(x)
        x = self.mid(x)
        for i in reversed(range(self.depth)):
            x = getattr(self, f"up{i}")(x)
            x = getattr(self, f"u{i}")(torch.cat([x, skips[i]], 1))
        return self.out(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warmup, repeats = (1, 2) if args.quick else (2, 5)

    torch.manual_seed(0)
    batch, patch = 4, [32, 64, 64]
    net = FnetUNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, *patch)
    y = torch.rand(batch, 1, *patch)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med, lo, hi = statistics.median(times), min(times), max(times)
    print(json.dumps({"bench": "torch_fnet", "case": "fnet3d_train", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": batch, "patch": patch,
                      "params": sum(p.numel() for p in net.parameters()), "depth": 4, "first_filters": 32,
                      "norm": "BatchNorm3d", "optimizer": "adam", "loss": "mse", "repeats": repeats,
                      "median_s": round(med, 6), "min_s": round(lo, 6), "max_s": round(hi, 6),
                      "patches_per_s_median": round(batch / med, 3), "patches_per_s_best": round(batch / lo, 3)}),
          flush=True)


if __name__ == "__main__":
    main()
