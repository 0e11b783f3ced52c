#!/usr/bin/env python3
"""diffusion_quality.py -- the quality checks of Lucid's diffusion models (issue 12), run through the CLI.

Usage:  python3 scripts/diffusion_quality.py [--lucid .build/release/lucid] [--out quality-diffusion]
                                             [--seconds 480] [--selfsupervised-seconds 120] [--seed 1]

1. Conditional restoration (blur + Poisson-Gaussian noise, synthetic specimens):
   `lucid demo diffusion --mode conditional --seconds S` writes the pairs' clean targets, trains the
   conditional diffusion model (inputs simulated from the targets, seeded) and keeps a held-out
   acquisition. CARE then trains on the same simulated pairs (same data.simulate, seed, patches, batch)
   for the same number of steps. Reported: PSNR of CARE and of the posterior mean of 8 samples with
   DDIM 20 steps and with DDIM 200 steps (same seed), and Spearman's rho between the std map and the
   actual error |mean - clean| over pixels.
2. Self-supervised mode vs Noise2Self at equal training time on the demo specimen: `lucid demo
   --seconds T` and `lucid demo diffusion --mode selfsupervised --seconds T`, one after the other.

Prints a table and writes OUT/quality.json. Timings depend on the machine's load (run `uptime`).
"""
import argparse, json, os, subprocess, sys

import numpy as np
import tifffile
from scipy.stats import spearmanr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)


def psnr(x, ref, data_range):
    return 10 * np.log10(data_range ** 2 / np.mean((x.astype(np.float64) - ref) ** 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lucid", default=os.path.join(ROOT, ".build/release/lucid"))
    ap.add_argument("--out", default="quality-diffusion")
    ap.add_argument("--seconds", type=float, default=480, help="training budget of the conditional model")
    ap.add_argument("--selfsupervised-seconds", type=float, default=120)
    ap.add_argument("--skip-selfsupervised", action="store_true")
    ap.add_argument("--seed", type=int, default=1, help="seed of the conditional demo's specimens, noise and sampling")
    args = ap.parse_args()
    L, out = args.lucid, os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    result = {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}

    # 1. Conditional diffusion vs CARE on the same simulated pairs and step budget.
    cond = os.path.join(out, "conditional")
    run([L, "demo", "diffusion", "--mode", "conditional", "--seconds", str(args.seconds), "--seed", str(args.seed), "-o", cond])
    steps = json.load(open(os.path.join(cond, "metrics.json")))["steps"]
    care_recipe = os.path.join(out, "care.yaml")
    with open(care_recipe, "w") as f:
        f.write(f"""method: care
data: {{target: "{cond}/data/*.tif", simulate: {{psf: {{model: gaussian, sigma: 0.15, pixel_size: 0.1, nxy: 15}}, photons: 20.0, read_noise: 2.0}}, patch: [64, 64], validation: 0.05}}
care: {{loss: mse}}
model: {{depth: 2, filters: 32, residual: true}}
training: {{steps: {steps}, batch: 8, lr: 5.0e-4, seed: 0, clip_norm: 1.0, validate_every: {max(10, steps // 4)}}}
output: "{out}/care"
""")
    subprocess.run(["rm", "-rf", os.path.join(out, "care")])
    run([L, "train", care_recipe])
    clean = tifffile.imread(os.path.join(cond, "clean.tif")).astype(np.float64)
    data_range = 20.0
    run([L, "predict", os.path.join(out, "care"), os.path.join(cond, "input.tif"), "-o", os.path.join(out, "care.tif"), "--weights", "last"])
    care = tifffile.imread(os.path.join(out, "care.tif"))
    result["steps"] = steps
    result["care_psnr"] = psnr(care, clean, data_range)
    result["input_psnr"] = psnr(tifffile.imread(os.path.join(cond, "input.tif")), clean, data_range)
    for k in [20, 200]:
        mean, std = os.path.join(out, f"mean{k}.tif"), os.path.join(out, f"std{k}.tif")
        run([L, "predict", os.path.join(cond, "checkpoint"), os.path.join(cond, "input.tif"), "-o", mean, "--std", std,
             "--samples", "8", "--steps", str(k), "--sampler", "ddim", "--seed", "0", "--weights", "last",
             ])
        m, s = tifffile.imread(mean), tifffile.imread(std)
        result[f"ddim{k}_psnr"] = psnr(m, clean, data_range)
        result[f"ddim{k}_spearman_std_error"] = float(spearmanr(s.ravel(), np.abs(m - clean).ravel()).correlation)

    # 2. Self-supervised mode vs Noise2Self at equal training time.
    if not args.skip_selfsupervised:
        t = str(args.selfsupervised_seconds)
        run([L, "demo", "--seconds", t, "-o", os.path.join(out, "noise2self")])
        run([L, "demo", "diffusion", "--mode", "selfsupervised", "--seconds", t, "-o", os.path.join(out, "selfsupervised")])
        n2s = json.load(open(os.path.join(out, "noise2self", "metrics.json")))
        ss = json.load(open(os.path.join(out, "selfsupervised", "metrics.json")))
        result["noise2self_psnr"], result["noise2self_steps"] = n2s["restored"]["psnr"], n2s["steps"]
        result["selfsupervised_psnr"], result["selfsupervised_steps"] = ss["mean"]["psnr"], ss["steps"]
        result["selfsupervised_spearman_std_error"] = ss["std_error_spearman"]

    json.dump(result, open(os.path.join(out, "quality.json"), "w"), indent=1)
    r = result
    print(f"conditional ({r['steps']} steps each): input {r['input_psnr']:.2f} dB, CARE {r['care_psnr']:.2f} dB, "
          f"diffusion mean DDIM-20 {r['ddim20_psnr']:.2f} dB (target: within 0.5 dB of CARE), DDIM-200 {r['ddim200_psnr']:.2f} dB "
          f"(target: DDIM-20 within 0.3 dB)")
    print(f"Spearman rho(std, |error|): DDIM-20 {r['ddim20_spearman_std_error']:.3f}, DDIM-200 {r['ddim200_spearman_std_error']:.3f} (target >= 0.3)")
    if "noise2self_psnr" in r:
        print(f"self-supervised at {args.selfsupervised_seconds:.0f} s: Noise2Self {r['noise2self_psnr']:.2f} dB ({r['noise2self_steps']} steps), "
              f"diffusion selfsupervised {r['selfsupervised_psnr']:.2f} dB ({r['selfsupervised_steps']} steps) (target: within 1 dB)")
    print(f"load: {r['uptime']}")


if __name__ == "__main__":
    main()
