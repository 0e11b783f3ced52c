#!/usr/bin/env python3
"""Run Lucid's benchmarks and the reference scripts in one session and print the ratios.

Usage:  python3 scripts/compare_bench.py [--quick] [--lucid .build/release/lucid] [--shared ../shared/bench]

References: ../shared/bench/torch_unet.py and deconv_bench.py, scripts/torch_fnet.py (PyTorch
replica of Lucid's fnet3D net for the `fnet3d_train` case) and scripts/torch_diffusion.py (the
diffusion U-Net of `diffusion_train` and `ddim_sample`).

Each tool prints JSON lines; all of them go to bench-results/<timestamp>.jsonl, and a table of
ratios (speed-up of Lucid over the reference, > 1 means Lucid is faster) goes to stdout.
Only ratios of runs made minutes apart on the same machine mean anything: the machines are shared.
"""
import argparse, datetime, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def json_lines(cmd, cwd=None):
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    try:
        out = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"  skipped: {e}", file=sys.stderr)
        return []
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def find(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def gflops(row):
    for k, v in row.items():
        if k.endswith("gflops_median"):
            return v
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats in the Python references")
    ap.add_argument("--lucid", default=os.path.join(ROOT, ".build/release/lucid"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "bench"))
    args = ap.parse_args()
    quick = ["--quick"] if args.quick else []

    lucid = json_lines([args.lucid, "bench"])
    torch = json_lines([sys.executable, os.path.join(args.shared, "torch_unet.py")] + quick)
    fnet = json_lines([sys.executable, os.path.join(ROOT, "scripts", "torch_fnet.py")] + quick)
    diffusion = json_lines([sys.executable, os.path.join(ROOT, "scripts", "torch_diffusion.py")] + quick)
    deconv = json_lines([sys.executable, os.path.join(args.shared, "deconv_bench.py")] + quick)

    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(ROOT, "bench-results", f"{stamp}.jsonl")
    with open(path, "w") as f:
        for src, rows in (("lucid", lucid), ("torch_unet", torch), ("torch_fnet", fnet), ("torch_diffusion", diffusion),
                          ("deconv_bench", deconv)):
            for r in rows:
                f.write(json.dumps({"source": src, **r}) + "\n")

    def speedup(lucid_case, ref_rows, ref_case, target):
        a = find(lucid, case=lucid_case)
        b = find(ref_rows, case=ref_case)
        if a and b:
            return (lucid_case, ref_case, b["median_s"] / a["median_s"], target)
        return (lucid_case, ref_case, None, target)

    rows = [
        speedup("unet2d_train", torch, "unet2d_train", 0.8),
        speedup("unet2d_predict", torch, "unet2d_infer", 1.2),
        speedup("unet3d_train", torch, "unet3d_train", 1.0),
        speedup("fnet3d_train", fnet, "fnet3d_train", 1.0),
        speedup("diffusion_train", diffusion, "diffusion_train", 1.0),
        speedup("ddim_sample", diffusion, "ddim_sample", 1.0),
        speedup("conv2d", torch, "conv2d_fwd_bwd", None),
        speedup("conv2d_fwd", torch, "conv2d_fwd", None),
        speedup("rl3d", deconv, "skimage_rl20_w2", 5.0),
        speedup("rl3d", deconv, "rl20_scipyfft_circ_w2", 1.3),
        speedup("rl3d", deconv, "rl20_scipyfft_pad_w2", 1.3),
        speedup("fftconv3d", deconv, "fftconvolve_w2", 1.5),
    ]
    print(f"{'lucid case':<16} {'reference':<24} {'speed-up':>9} {'target':>7}")
    for a, b, r, t in rows:
        rs = "n/a" if r is None else f"{r:.2f}x"
        ts = "" if t is None else f"{t:.1f}x"
        print(f"{a:<16} {b:<24} {rs:>9} {ts:>7}")
    conv = find(lucid, case="conv2d")
    peak = [r for r in lucid if r.get("case") == "sgemm_square_2048"
            and r.get("config", {}).get("library") == "openblas" and r.get("threads") == 2]
    if conv and peak and gflops(conv) and gflops(peak[0]):
        print(f"conv2d GFLOP/s ÷ sgemm 2048³ (2 threads): {gflops(conv) / gflops(peak[0]):.2f} (target 0.50)")
    print(f"all JSON lines: {path}")


if __name__ == "__main__":
    main()
