#!/usr/bin/env python3
"""Noise2Self / Noise2Void quality: Lucid against the PyTorch reference on the same data.

Usage:  python3 scripts/quality_vs_reference.py [--steps 1000] [--seeds 1234 1 2] [--methods n2s n2v]
        [--lucid .build/release/lucid] [--shared ../shared/bench] [--work /tmp/lucid-quality]

Data: the demo's 512×512 synthetic specimen with Poisson–Gaussian noise (20 photons at the
brightest structure, read noise 2), written by `lucid demo`, scaled by 1/20 so the clean image
lies in [0, 1] as deep_n2s.py expects (it scores with data_range 1).
Both sides train the same CARE U-Net (depth 2, 32 filters, no residual, no normalization layers) with the same masking,
batch 8 of 64×64 patches with flips/rotations, Adam lr 1e-3, a constant learning rate and the
same number of steps, then predict the whole image without masking. Needs torch, tifffile and
scikit-image. Prints one JSON line per run and a table.
"""
import argparse, json, os, subprocess, sys

import numpy as np
import tifffile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTONS = 20.0

RECIPE = """method: {method}
data:
  train: {noisy}
  axes: YX
  patch: [64, 64]
  validation: 0.05
  normalize: {{mode: none}}
{section}
model: {{kind: unet, depth: 2, filters: 32, kernel: 3, residual: false, norm: none}}
training: {{steps: {steps}, batch: 8, lr: 1.0e-3, seed: {seed}, schedule: none, validate_every: {steps}}}
output: {output}
"""
SECTIONS = {"n2s": ("noise2self", "noise2self: {grid: 4, replacement: interpolate}"),
            "n2v": ("noise2void", "noise2void: {pixel_fraction: 0.002, neighborhood: 5}")}


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1234, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["n2s", "n2v"], choices=list(SECTIONS))
    ap.add_argument("--lucid", default=os.path.join(ROOT, ".build/release/lucid"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "bench"))
    ap.add_argument("--work", default="/tmp/lucid-quality")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    demo = os.path.join(args.work, "demo")
    subprocess.run([args.lucid, "demo", "--size", "512", "--seconds", "3", "--output", demo],
                   check=True, capture_output=True)
    noisy = os.path.join(args.work, "noisy.tif")
    clean = os.path.join(args.work, "clean.tif")
    for src, dst in (("noisy.tif", noisy), ("clean.tif", clean)):
        tifffile.imwrite(dst, (tifffile.imread(os.path.join(demo, src)) / PHOTONS).astype(np.float32))

    rows = []
    for method in args.methods:
        name, section = SECTIONS[method]
        for seed in args.seeds:
            ref = run([sys.executable, os.path.join(args.shared, "deep_n2s.py"), "--noisy", noisy,
                       "--clean", clean, "--method", method, "--max-steps", str(args.steps),
                       "--seed", str(seed)])
            out = os.path.join(args.work, f"ckpt-{method}-{seed}")
            recipe = os.path.join(args.work, f"{method}-{seed}.yaml")
            with open(recipe, "w") as f:
                f.write(RECIPE.format(method=name, noisy=noisy, section=section, steps=args.steps,
                                      seed=seed, output=out))
            subprocess.run(["rm", "-rf", out], check=True)
            subprocess.run([args.lucid, "train", recipe], check=True, capture_output=True)
            pred = os.path.join(args.work, f"pred-{method}-{seed}.tif")
            subprocess.run([args.lucid, "predict", out, noisy, "-o", pred, "--weights", "last"],
                           check=True, capture_output=True)
            lucid = run([args.lucid, "evaluate", pred, "--reference", clean, "--data-range", "1"])
            row = {"method": method, "seed": seed, "steps": args.steps,
                   "lucid_psnr": lucid["psnr"], "reference_psnr": ref["psnr"],
                   "lucid_ssim": lucid["ssim"], "reference_ssim": ref["ssim"]}
            print(json.dumps(row), flush=True)
            rows.append(row)

    print(f"\n{'method':<6} {'seed':>6} {'Lucid PSNR':>11} {'reference':>10} {'difference':>11}")
    for r in rows:
        print(f"{r['method']:<6} {r['seed']:>6} {r['lucid_psnr']:>11.2f} {r['reference_psnr']:>10.2f} "
              f"{r['lucid_psnr'] - r['reference_psnr']:>+11.2f}")
    for method in args.methods:
        d = [r["lucid_psnr"] - r["reference_psnr"] for r in rows if r["method"] == method]
        print(f"{method}: mean difference {np.mean(d):+.2f} dB over {len(d)} seeds")


if __name__ == "__main__":
    main()
