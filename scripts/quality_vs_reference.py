#!/usr/bin/env python3
"""Restoration quality on real microscopy images: Lucid against the PyTorch references.

Usage:  python3 scripts/quality_vs_reference.py [--images nuclei cell] [--noises p5 p20 g]
        [--methods n2s n2v care classical zeroshot] [--seeds 0 1 2] [--sides torch lucid]
        [--steps 1000] [--lucid .build/release/lucid] [--work /tmp/lucid-quality] [--table]

Images (nothing is shipped with Lucid; both come from pip packages and load offline):
  nuclei  the 512×512 fluorescence nuclei image of the 2018 Data Science Bowl (Caicedo et al.
          2019) that StarDist ships (`stardist/data/images/img2d.tif`, read from the wheel that
          `pip download stardist --no-deps` fetches; StarDist itself is not installed)
  cell    scikit-image's `skimage.data.cell()` (660×550)
Each is scaled so that its 0.1–99.9 percentiles map to [0, 1] (clipped): the clean image.
Noise (seed 0): p5 / p20 Poisson at a peak of 5 / 20 photons plus Gaussian read noise σ 0.02;
g Gaussian σ 0.1.

Protocol (the references' budget): 1000 steps, batch 8, 64×64 patches with flips/rotations,
2 threads (LUCID_THREADS=2, torch.set_num_threads(2)), the CARE U-Net (depth 2, 32 filters).
  torch    ../shared/bench/deep_n2s.py --method n2s|n2v|care (Adam 1e-3, constant rate)
  lucid    a recipe with only method, data (train/input/target, axes, patch), model
           {kind: unet, depth: 2, filters: 32} and training {steps, batch, seed}: Lucid's own
           defaults for everything else; predicted with `lucid predict` and its defaults
  classical  scikit-image's calibrate_denoiser (J-invariant self-calibration) over TV,
           wavelet and non-local means; the best of the three by PSNR (an oracle choice)
  zeroshot `method: zeroshot` with its defaults on the noisy image alone
CARE trains on the left 3/4 of the image and is scored on the right 1/4; the other methods are
scored on the whole image. PSNR with data range 1 against the clean image; `offset` is the mean
of prediction − clean and `slope` the best affine fit clean ≈ slope · prediction + b (1 when the
prediction has the clean image's intensities).
--structn2v: Noise2Void with and without `noise2void.struct_mask` on the nuclei image with
noise correlated along rows; the residual's anisotropy (lag-1 correlation along X minus along
Y) says how much of the row-correlated noise is left. Every run's result is
cached as a JSON file in --work/results, so an interrupted sweep continues where it stopped;
--table prints the table of what is there.
"""
import argparse, glob, io, json, os, subprocess, sys, time, zipfile

import numpy as np
import tifffile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISES = {"p5": ("poisson", 5.0), "p20": ("poisson", 20.0), "g": ("gaussian", 0.1)}
READ_NOISE = 0.02

LUCID_RECIPE = """method: {method}
data:
  {data}
  axes: YX
  patch: [64, 64]
model: {{kind: unet, depth: 2, filters: 32}}
training: {{steps: {steps}, batch: 8, seed: {seed}}}
output: {output}
"""
LUCID_METHODS = {"n2s": "noise2self", "n2v": "noise2void", "care": "care", "zeroshot": "zeroshot"}


def stardist_nuclei(work):
    wheels = glob.glob(os.path.join(work, "stardist-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "stardist", "--no-deps", "-d", work],
                       check=True, capture_output=True)
        wheels = glob.glob(os.path.join(work, "stardist-*.whl"))
    data = zipfile.ZipFile(wheels[0]).read("stardist/data/images/img2d.tif")
    return tifffile.imread(io.BytesIO(data)).astype(np.float64)


def load_image(name, work):
    if name == "nuclei":
        return stardist_nuclei(work)
    import skimage.data
    return skimage.data.cell().astype(np.float64)


def prepare(work, images):
    """Writes NAME_clean.tif and NAME_NOISE.tif for every image and noise (once)."""
    for name in images:
        clean_path = os.path.join(work, f"{name}_clean.tif")
        if os.path.exists(clean_path):
            continue
        a = load_image(name, work)
        lo, hi = np.percentile(a, 0.1), np.percentile(a, 99.9)
        clean = np.clip((a - lo) / (hi - lo), 0, 1)
        rng = np.random.default_rng(0)
        for key, (kind, level) in NOISES.items():
            if kind == "poisson":
                noisy = rng.poisson(clean * level) / level + rng.normal(0, READ_NOISE, clean.shape)
            else:
                noisy = clean + rng.normal(0, level, clean.shape)
            tifffile.imwrite(os.path.join(work, f"{name}_{key}.tif"), noisy.astype(np.float32))
        tifffile.imwrite(clean_path, clean.astype(np.float32))


def last_json(out):
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def psnr_of_arrays(p, c):
    from skimage.metrics import peak_signal_noise_ratio as psnr
    return psnr(c.astype(np.float64), p.astype(np.float64), data_range=1.0)


def psnr_of(pred_path, clean, care):
    from skimage.metrics import peak_signal_noise_ratio as psnr
    p = tifffile.imread(pred_path).astype(np.float64)
    c = clean.astype(np.float64)
    # The best affine map clean ≈ slope · prediction + b over the whole image (1: right intensities).
    slope = float(np.polyfit(p.ravel(), c.ravel(), 1)[0])
    if care:
        c0 = (3 * c.shape[1]) // 4
        p, c = p[:, c0:], c[:, c0:]
    return dict(psnr=psnr(c, p, data_range=1.0), offset=float((p - c).mean()), slope=slope)


def run_torch(args, method, noisy, clean_path, seed, pred):
    cmd = [sys.executable, os.path.join(args.shared, "deep_n2s.py"), "--noisy", noisy, "--method", method,
           "--max-steps", str(args.steps), "--seed", str(seed), "--save-pred", pred]
    if method == "care":
        cmd += ["--clean", clean_path]
    t0 = time.time()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.time() - t0


def run_lucid(args, method, noisy, clean_path, seed, pred, key):
    out = os.path.join(args.work, "ckpt", key)
    subprocess.run(["rm", "-rf", out], check=True)
    if method == "care":
        # Left 3/4 as the training pair, the whole image predicted.
        tr = os.path.join(args.work, "care-train", key)
        os.makedirs(os.path.join(tr, "in"), exist_ok=True)
        os.makedirs(os.path.join(tr, "gt"), exist_ok=True)
        n, c = tifffile.imread(noisy), tifffile.imread(clean_path)
        c0 = (3 * n.shape[1]) // 4
        tifffile.imwrite(os.path.join(tr, "in", "a.tif"), n[:, :c0])
        tifffile.imwrite(os.path.join(tr, "gt", "a.tif"), c[:, :c0])
        data = f"input: {tr}/in\n  target: {tr}/gt"
    else:
        data = f"train: {noisy}"
    recipe = os.path.join(args.work, "ckpt", key + ".yaml")
    os.makedirs(os.path.dirname(recipe), exist_ok=True)
    text = LUCID_RECIPE.format(method=LUCID_METHODS[method], data=data, steps=args.steps, seed=seed, output=out)
    if method == "zeroshot":
        # Its own small net and budget: only the seed is set.
        text = text.replace("model: {kind: unet, depth: 2, filters: 32}\n", "").replace(
            f"training: {{steps: {args.steps}, batch: 8, seed: {seed}}}", f"training: {{seed: {seed}}}").replace(
            "  patch: [64, 64]\n", "")
    with open(recipe, "w") as f:
        f.write(text)
    env = dict(os.environ, LUCID_THREADS="2")
    t0 = time.time()
    subprocess.run([args.lucid, "train", recipe], check=True, capture_output=True, env=env)
    seconds = time.time() - t0
    subprocess.run([args.lucid, "predict", out, noisy, "-o", pred], check=True, capture_output=True, env=env)
    return seconds


def run_classical(noisy, clean, pred):
    from skimage.restoration import calibrate_denoiser, denoise_tv_chambolle, denoise_wavelet, denoise_nl_means
    n = tifffile.imread(noisy).astype(np.float64)
    grids = {
        "tv": (denoise_tv_chambolle, {"weight": list(np.geomspace(0.01, 1.0, 12))}),
        "wavelet": (denoise_wavelet, {"sigma": list(np.geomspace(0.01, 0.5, 12)), "rescale_sigma": [True]}),
        "nlm": (denoise_nl_means, {"h": list(np.geomspace(0.01, 0.5, 10)), "patch_size": [5],
                                    "patch_distance": [6], "fast_mode": [True]}),
    }
    best = None
    for name, (fn, grid) in grids.items():
        out = calibrate_denoiser(n, fn, denoise_parameters=grid)(n)
        # The strictest reference: the best of the three calibrated denoisers, chosen with the clean image.
        score = psnr_of_arrays(out, clean)
        if best is None or score > best[0]:
            best = (score, name, out)
    tifffile.imwrite(pred, best[2].astype(np.float32))
    return best[1]


def anisotropy(residual):
    """corr along X at lag 1 minus corr along Y at lag 1: 0 for isotropic residuals, large when
    noise correlated along rows is left in."""
    r = residual - residual.mean()
    def corr(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    return corr(r[:, :-1], r[:, 1:]) - corr(r[:-1, :], r[1:, :])


def structn2v(args):
    """N2V and structN2V on the nuclei image with noise correlated along rows (white Gaussian
    σ 0.1 averaged over 5 neighbours in X, times √5 to keep σ 0.1, plus white σ 0.02)."""
    prepare(args.work, ["nuclei"])
    clean = tifffile.imread(os.path.join(args.work, "nuclei_clean.tif"))
    noisy_path = os.path.join(args.work, "nuclei_rows.tif")
    if not os.path.exists(noisy_path):
        rng = np.random.default_rng(0)
        w = rng.normal(0, 0.1, (clean.shape[0], clean.shape[1] + 4))
        rows = sum(w[:, k:k + clean.shape[1]] for k in range(5)) / np.sqrt(5)
        tifffile.imwrite(noisy_path, (clean + rows + rng.normal(0, 0.02, clean.shape)).astype(np.float32))
    noisy = tifffile.imread(noisy_path)
    print(json.dumps(dict(case="noisy", anisotropy=anisotropy(noisy - clean))))
    for name, section in (("n2v", ""), ("structn2v", "noise2void: {struct_mask: {axis: horizontal, length: 9}}\n")):
        for seed in args.seeds:
            key = f"nuclei-rows-{name}-lucid-{seed}"
            res = os.path.join(args.work, "results", key + ".json")
            if os.path.exists(res):
                print(open(res).read())
                continue
            out = os.path.join(args.work, "ckpt", key)
            subprocess.run(["rm", "-rf", out], check=True)
            recipe = os.path.join(args.work, "ckpt", key + ".yaml")
            os.makedirs(os.path.dirname(recipe), exist_ok=True)
            with open(recipe, "w") as f:
                f.write(LUCID_RECIPE.format(method="noise2void", data=f"train: {noisy_path}", steps=args.steps,
                                            seed=seed, output=out) + section)
            env = dict(os.environ, LUCID_THREADS="2")
            subprocess.run([args.lucid, "train", recipe], check=True, capture_output=True, env=env)
            pred = os.path.join(args.work, "results", key + ".tif")
            subprocess.run([args.lucid, "predict", out, noisy_path, "-o", pred], check=True, capture_output=True, env=env)
            p = tifffile.imread(pred)
            row = dict(case=name, seed=seed, steps=args.steps, anisotropy=anisotropy(p - clean),
                       psnr=psnr_of_arrays(p, clean))
            with open(res, "w") as f:
                json.dump(row, f)
            print(json.dumps(row), flush=True)


def sweep(args):
    os.makedirs(os.path.join(args.work, "results"), exist_ok=True)
    prepare(args.work, args.images)
    for image in args.images:
        clean_path = os.path.join(args.work, f"{image}_clean.tif")
        clean = tifffile.imread(clean_path)
        for noise in args.noises:
            noisy = os.path.join(args.work, f"{image}_{noise}.tif")
            for method in args.methods:
                sides = ["classical"] if method == "classical" else ["lucid"] if method == "zeroshot" else args.sides
                seeds = [0] if method == "classical" else args.seeds
                for side in sides:
                    for seed in seeds:
                        key = f"{image}-{noise}-{method}-{side}-{seed}{args.tag}"
                        res = os.path.join(args.work, "results", key + ".json")
                        if os.path.exists(res):
                            continue
                        pred = os.path.join(args.work, "results", key + ".tif")
                        extra = {}
                        load = os.getloadavg()[0]
                        if side == "torch":
                            seconds = run_torch(args, method, noisy, clean_path, seed, pred)
                        elif side == "lucid":
                            seconds = run_lucid(args, method, noisy, clean_path, seed, pred, key)
                        else:
                            t0 = time.time()
                            extra["denoiser"] = run_classical(noisy, clean, pred)
                            seconds = time.time() - t0
                        row = dict(image=image, noise=noise, method=method, side=side, seed=seed, tag=args.tag,
                                   steps=args.steps, seconds=round(seconds, 1), load=round(load, 1),
                                   **psnr_of(pred, clean, method == "care"), **extra)
                        with open(res, "w") as f:
                            json.dump(row, f)
                        print(json.dumps(row), flush=True)


def table(args):
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(args.work, "results", "*.json")))]
    rows = [r for r in rows if "image" in r]
    groups = {}
    for r in rows:
        groups.setdefault((r["image"], r["noise"], r["method"], r["side"] + r.get("tag", "")), []).append(r["psnr"])
    print(f"{'image':<7} {'noise':<5} {'method':<9} {'side':<16} {'n':>2} {'mean':>7} {'spread':>7}  runs")
    for (image, noise, method, side), v in sorted(groups.items()):
        print(f"{image:<7} {noise:<5} {method:<9} {side:<16} {len(v):>2} {np.mean(v):>7.2f} {np.ptp(v):>7.2f}  "
              + " ".join(f"{x:.2f}" for x in v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="+", default=["nuclei", "cell"], choices=["nuclei", "cell"])
    ap.add_argument("--noises", nargs="+", default=list(NOISES), choices=list(NOISES))
    ap.add_argument("--methods", nargs="+", default=["classical", "n2s", "n2v", "care"],
                    choices=["classical", "n2s", "n2v", "care", "zeroshot"])
    ap.add_argument("--sides", nargs="+", default=["torch", "lucid"], choices=["torch", "lucid"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--tag", default="", help="suffix of the result names (variants of Lucid)")
    ap.add_argument("--lucid", default=os.path.join(ROOT, ".build/release/lucid"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "bench"))
    ap.add_argument("--work", default="/tmp/lucid-quality")
    ap.add_argument("--table", action="store_true", help="print the table of the cached results and stop")
    ap.add_argument("--structn2v", action="store_true",
                    help="N2V against structN2V on noise correlated along rows (anisotropy of the residual)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.structn2v:
        structn2v(args)
    elif args.table:
        table(args)
    else:
        sweep(args)
        table(args)


if __name__ == "__main__":
    main()
