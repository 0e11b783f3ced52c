#!/usr/bin/env python3
"""torch_diffusion.py -- PyTorch CPU reference (2 threads) for Lucid's `diffusion_train` and
`ddim_sample` bench cases.

Run:  python3 scripts/torch_diffusion.py            (prints JSON lines to stdout)
      python3 scripts/torch_diffusion.py --quick    (fewer repeats, for smoke tests)
      python3 scripts/torch_diffusion.py --names    (parameter names and shapes as JSON, for Lucid's test)

The network is Lucid's `DiffusionUNet` (Sources/LucidNN/DiffusionUNet.swift) with the bench
config (`DiffusionBenchmarks.config`), layer for layer and with the same parameter names:
  embed      : Linear(f, 4f), SiLU, Linear(4f, 4f) on the sinusoidal embedding (width f) of t
  conv_in    : Conv2d(2, f, 3, pad 1)                 x_t and the condition, concatenated
  down.i.j   : ResidualBlock  (level i = 0, 1: f·2^i channels), then 2x2 average pooling
  mid.0, mid_attn, mid.1 : ResidualBlock 2f -> 4f, self-attention (1 head), ResidualBlock 4f -> 4f
  up.i.j     : nearest 2x upsampling, concat the level's skip, ResidualBlock (3f·2^i -> f·2^i)
  norm_out, conv_out : GroupNorm, SiLU, Conv2d(f, 1, 3, pad 1)
  ResidualBlock: skip(x) + conv2(SiLU(GN2(conv1(SiLU(GN1(x))) + emb(SiLU(e)))))
with f = 32, GroupNorm groups min(8, channels).
diffusion_train: v-prediction MSE at uniform random steps of the cosine schedule (1000 levels),
  x_t scaled by 1/sqrt(alpha^2 + sigma^2), on 16 patches 64x64, backward, Adam(lr 2e-4).step.
ddim_sample: 20 deterministic DDIM steps (spaced evenly in log(sigma/alpha), from the last step with
  sigma/alpha <= 100) of one 256x256 image, without gradients.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


def groups(channels, wanted=8):
    g = min(wanted, channels)
    while channels % g:
        g -= 1
    return g


def sinusoidal(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freqs[None, :]
    out = torch.cat([torch.sin(a), torch.cos(a)], dim=1).float()
    return F.pad(out, (0, dim - 2 * half))


class ResidualBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class SelfAttention(nn.Module):
    def __init__(self, channels, heads=1):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, d, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))
        out = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(n, c, h, w)
        return x + self.proj(out)


class DiffusionUNet(nn.Module):
    def __init__(self, channels=1, condition=1, depth=2, f=32, blocks=1, attention=True):
        super().__init__()
        self.depth, self.f = depth, f
        e = 4 * f
        self.embed = nn.Sequential(nn.Linear(f, e), nn.SiLU(), nn.Linear(e, e))
        self.conv_in = nn.Conv2d(channels + condition, f, 3, padding=1)
        self.down = nn.ModuleList(
            nn.ModuleList(ResidualBlock((f if i == 0 else f << (i - 1)) if j == 0 else f << i, f << i, e) for j in range(blocks))
            for i in range(depth))
        bottom = f << depth
        self.mid = nn.ModuleList([ResidualBlock(f << (depth - 1), bottom, e), ResidualBlock(bottom, bottom, e)])
        self.mid_attn = SelfAttention(bottom) if attention else None
        self.up = nn.ModuleList(
            nn.ModuleList(ResidualBlock((f << (i + 1)) + (f << i) if j == 0 else f << i, f << i, e) for j in range(blocks))
            for i in range(depth))
        self.norm_out = nn.GroupNorm(groups(f), f)
        self.conv_out = nn.Conv2d(f, channels, 3, padding=1)

    def forward(self, x, t):
        e = F.silu(self.embed(sinusoidal(t, self.f)))
        h = self.conv_in(x)
        skips = []
        for level in self.down:
            for b in level:
                h = b(h, e)
            skips.append(h)
            h = F.avg_pool2d(h, 2)
        h = self.mid[0](h, e)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid[1](h, e)
        for i in reversed(range(self.depth)):
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skips[i]], 1)
            for b in self.up[i]:
                h = b(h, e)
        return self.conv_out(F.silu(self.norm_out(h)))


def cosine_schedule(T):
    """alpha_t, sigma_t for t = 0..T as Lucid's NoiseSchedule(kind: .cosine)."""
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    a, s, abar = [1.0], [0.0], 1.0
    for t in range(1, T + 1):
        beta = min(0.999, 1 - f(t / T) / f((t - 1) / T))
        abar *= 1 - min(beta, 0.999)
        a.append(math.sqrt(abar))
        s.append(math.sqrt(1 - abar))
    return a, s


def sampling_steps(a, s, count):
    """Lucid's NoiseSchedule.samplingSteps: evenly spaced in log(sigma/alpha) from the last step with ratio <= 100."""
    top = max(t for t in range(1, len(a)) if s[t] / a[t] <= 100)
    level = lambda t: math.log(s[t] / a[t])
    hi, lo = level(top), level(1)
    out, t = [], top
    for i in range(count):
        target = hi - i * (hi - lo) / (count - 1)
        while t > 1 and level(t - 1) >= target - 1e-9 * (1 + abs(target)):
            t -= 1
        if not out or out[-1] != t:
            out.append(t)
    if out[-1] != 1:
        out.append(1)
    return out


def timed(step, warmup, repeats):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--names", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = DiffusionUNet()
    if args.names:
        print(json.dumps([[n, list(p.shape)] for n, p in net.named_parameters()]))
        return
    warmup, repeats = (1, 2) if args.quick else (2, 7)
    params = sum(p.numel() for p in net.parameters())
    T = 1000
    a, s = cosine_schedule(T)
    common = {"bench": "torch_diffusion", "torch": torch.__version__, "threads": torch.get_num_threads(), "params": params,
              "depth": 2, "first_filters": 32, "attention": True}

    batch = 16
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    x0 = torch.rand(batch, 1, 64, 64)
    cond = torch.rand(batch, 1, 64, 64)
    gen = torch.Generator().manual_seed(1)

    def train_step():
        steps = torch.randint(1, T + 1, (batch,), generator=gen)
        at = torch.tensor([a[i] for i in steps])[:, None, None, None]
        st = torch.tensor([s[i] for i in steps])[:, None, None, None]
        eps = torch.randn(x0.shape, generator=gen)
        xt = at * x0 + st * eps
        inp = torch.cat([xt / torch.sqrt(at * at + st * st), cond], 1)
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(inp, steps.float() * (1000 / T)), at * eps - st * x0)
        loss.backward()
        opt.step()

    med, lo, hi = timed(train_step, warmup, repeats)
    print(json.dumps({**common, "case": "diffusion_train", "batch": batch, "patch": [64, 64], "optimizer": "adam",
                      "prediction": "v", "repeats": repeats, "median_s": round(med, 6), "min_s": round(lo, 6),
                      "max_s": round(hi, 6), "patches_per_s_median": round(batch / med, 3),
                      "patches_per_s_best": round(batch / lo, 3)}), flush=True)

    ts = sampling_steps(a, s, 20)
    condition = torch.rand(1, 1, 256, 256)

    @torch.no_grad()
    def sample():
        x = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(2)) * s[ts[0]]
        for k, t in enumerate(ts):
            nxt = ts[k + 1] if k + 1 < len(ts) else 0
            c = 1 / math.sqrt(a[t] ** 2 + s[t] ** 2)
            v = net(torch.cat([x * c, condition], 1), torch.tensor([t * 1000 / T], dtype=torch.float32))
            norm = a[t] ** 2 + s[t] ** 2
            x0hat = (a[t] * x - s[t] * v) / norm
            if nxt == 0:
                return x0hat
            r = s[nxt] / s[t]
            x = (a[nxt] - r * a[t]) * x0hat + r * x
        return x

    net.eval()
    med, lo, hi = timed(sample, 1, max(3, repeats // 2))
    print(json.dumps({**common, "case": "ddim_sample", "shape": [1, 1, 256, 256], "steps": 20, "evaluations": len(ts),
                      "repeats": max(3, repeats // 2), "median_s": round(med, 6), "min_s": round(lo, 6), "max_s": round(hi, 6),
                      "mpix_per_s_median": round(256 * 256 / med / 1e6, 4), "mpix_per_s_best": round(256 * 256 / lo / 1e6, 4)}),
          flush=True)


if __name__ == "__main__":
    main()
