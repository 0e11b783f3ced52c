#!/usr/bin/env python3
"""Run Lucid's benchmarks and the reference scripts in one session and print the ratio table.

Usage:  python3 scripts/compare_bench.py [--quick] [--lucid .build/release/lucid] [--shared ../shared/bench]
        python3 scripts/compare_bench.py --from bench-results/<timestamp>.jsonl   (table of a past run)

Runs, one after the other on this machine:
  - `lucid bench` (every case, planning afresh in an empty LUCID_WISDOM folder; each JSON line
    names the CPU, ISA, threads and planner mode),
  - ../shared/bench/sgemm_limit.c (OpenBLAS sgemm 2048^3, 2 threads; built with gcc when present),
  - ../shared/bench/torch_unet.py, scripts/torch_fnet.py (Lucid's fnet3D net) and
    scripts/torch_diffusion.py (the diffusion U-Net of diffusion_train, ddim_sample), PyTorch CPU, 2 threads,
  - ../shared/bench/deconv_bench.py (scikit-image and SciPy Richardson-Lucy),
  - `lucid deconvolve` as a whole process (TIFF in, 20 RL iterations, TIFF out) on deconv_bench's
    volume and PSF, from a cold wisdom cache (a fresh LUCID_WISDOM folder each run) and warm
    (the same folder again), periodic and reflect boundaries.
All JSON lines go to bench-results/<timestamp>.jsonl and a table of ratios (> 1: Lucid is faster,
or for sgemm/conv2d: Lucid's rate over OpenBLAS's) to stdout. Only ratios of runs made minutes
apart on the same machine mean anything: the machines are shared, so the load average is printed.
"""
import argparse, datetime, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def json_lines(cmd, cwd=None, env=None):
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    try:
        out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
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
        if all((r.get("config", {}).get(k[7:]) if k.startswith("config_") else r.get(k)) == v for k, v in match.items()):
            return r
    return None


def gflops(row):
    for k, v in row.items():
        if k.endswith("gflops_median"):
            return v
    return None


def sgemm_limit(shared):
    """OpenBLAS 2048^3 at 2 threads from the shared C harness (None without gcc/pkg-config)."""
    src = os.path.join(shared, "sgemm_limit.c")
    if not (os.path.exists(src) and shutil.which("gcc") and shutil.which("pkg-config")):
        return []
    exe = os.path.join(tempfile.mkdtemp(prefix="lucid-sgemm-"), "sgemm_limit")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"], capture_output=True, text=True).stdout.split()
    if subprocess.run(["gcc", "-O2", "-o", exe, src] + flags).returncode != 0:
        return []
    return json_lines([exe, "square", "2"])


def deconvolve_processes(lucid, shared, repeats):
    """Whole `lucid deconvolve` runs on deconv_bench.py's data, cold and warm wisdom."""
    try:
        import importlib.util
        import tifffile
        spec = importlib.util.spec_from_file_location("deconv_bench", os.path.join(shared, "deconv_bench.py"))
        db = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(db)
    except Exception as e:  # scipy/skimage/tifffile missing
        print(f"  deconvolve processes skipped: {e}", file=sys.stderr)
        return []
    work = tempfile.mkdtemp(prefix="lucid-deconv-bench-")
    psf = db.make_psf()
    tifffile.imwrite(os.path.join(work, "volume.tif"), db.make_volume(psf), metadata={"axes": "ZYX"})
    tifffile.imwrite(os.path.join(work, "psf.tif"), psf, metadata={"axes": "ZYX"})
    rows = []
    for boundary in ("periodic", "reflect"):
        def run(folder):
            env = dict(os.environ, LUCID_WISDOM=folder)
            cmd = [lucid, "deconvolve", "volume.tif", "--psf", "psf.tif", "-o", "out.tif", "--iterations", "20",
                   "--boundary", boundary]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
            return time.perf_counter() - t0
        print(f"running: lucid deconvolve --boundary {boundary} (cold and warm wisdom)", file=sys.stderr, flush=True)
        cold, warm = [], []
        for _ in range(repeats):
            folder = tempfile.mkdtemp(prefix="wisdom-", dir=work)
            cold.append(run(folder))
            warm.append(run(folder))
        for state, ts in (("cold", cold), ("warm", warm)):
            rows.append({"case": f"deconvolve_{boundary}_{state}", "process": True, "boundary": boundary,
                         "wisdom": state, "shape": [64, 256, 256], "psf": [31, 31, 31], "iterations": 20,
                         "repeats": len(ts), "median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts)})
    shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats in the Python references")
    ap.add_argument("--lucid", default=os.path.join(ROOT, ".build/release/lucid"))
    # ../shared/bench beside the checkout, or two levels up (a worktree under /work/wt/).
    shared = next((p for p in (os.path.join(ROOT, "..", "shared", "bench"), os.path.join(ROOT, "..", "..", "shared", "bench"))
                   if os.path.isdir(p)), os.path.join(ROOT, "..", "shared", "bench"))
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--from", dest="saved", help="print the table of a saved bench-results/*.jsonl instead of running")
    args = ap.parse_args()
    quick = ["--quick"] if args.quick else []
    sources = ("lucid", "sgemm_limit", "torch_unet", "torch_fnet", "torch_diffusion", "deconv_bench", "lucid_process")

    if args.saved:
        path = args.saved
        by = {s: [] for s in sources}
        for line in open(path):
            r = json.loads(line)
            if r.get("source") == "load":
                load_before, load_after = r["before"], r["after"]
            elif r.get("source") in by:
                by[r.pop("source")].append(r)
        lucid, blas, torch, fnet, diffusion, deconv, process = (by[s] for s in sources)
        if "load_before" not in locals():
            load_before = load_after = [float("nan")]
    else:
        load_before = os.getloadavg()
        # Plans made in this run, on this machine's present state (not an older cache's).
        lucid = json_lines([args.lucid, "bench"], env=dict(os.environ, LUCID_WISDOM=tempfile.mkdtemp(prefix="lucid-wisdom-")))
        blas = sgemm_limit(args.shared)
        torch = json_lines([sys.executable, os.path.join(args.shared, "torch_unet.py")] + quick)
        fnet = json_lines([sys.executable, os.path.join(ROOT, "scripts", "torch_fnet.py")] + quick)
        diffusion = json_lines([sys.executable, os.path.join(ROOT, "scripts", "torch_diffusion.py")] + quick)
        deconv = json_lines([sys.executable, os.path.join(args.shared, "deconv_bench.py")] + quick)
        process = deconvolve_processes(args.lucid, args.shared, 3)
        load_after = os.getloadavg()
        os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = os.path.join(ROOT, "bench-results", f"{stamp}.jsonl")
        with open(path, "w") as f:
            f.write(json.dumps({"source": "load", "before": list(load_before), "after": list(load_after)}) + "\n")
            for src, rows in zip(sources, (lucid, blas, torch, fnet, diffusion, deconv, process)):
                for r in rows:
                    f.write(json.dumps({"source": src, **r}) + "\n")

    def speedup(lucid_rows, lucid_case, ref_rows, ref_case, target):
        a, b = find(lucid_rows, case=lucid_case), find(ref_rows, case=ref_case)
        return (lucid_case, ref_case, b["median_s"] / a["median_s"] if a and b else None, target)

    rows = [
        speedup(lucid, "unet2d_train", torch, "unet2d_train", 1.0),
        speedup(lucid, "unet2d_predict", torch, "unet2d_infer", 1.5),
        speedup(lucid, "unet3d_train", torch, "unet3d_train", 1.2),
        speedup(lucid, "fnet3d_train", fnet, "fnet3d_train", 1.0),
        speedup(lucid, "diffusion_train", diffusion, "diffusion_train", 1.0),
        speedup(lucid, "ddim_sample", diffusion, "ddim_sample", 1.0),
        speedup(lucid, "conv2d", torch, "conv2d_fwd_bwd", None),
        speedup(lucid, "conv2d_fwd", torch, "conv2d_fwd", None),
        speedup(lucid, "rl3d", deconv, "rl20_scipyfft_circ_w2", None),
        speedup(lucid, "rl3d_reflect", deconv, "rl20_scipyfft_pad_w2", None),
        speedup(lucid, "fftconv3d", deconv, "fftconvolve_w2", None),
    ]
    for state in ("cold", "warm"):
        rows += [speedup(process, f"deconvolve_periodic_{state}", deconv, "skimage_rl20_w2", 5.0),
                 speedup(process, f"deconvolve_periodic_{state}", deconv, "rl20_scipyfft_circ_w2", 1.3),
                 speedup(process, f"deconvolve_reflect_{state}", deconv, "skimage_rl20_w2", 5.0),
                 speedup(process, f"deconvolve_reflect_{state}", deconv, "rl20_scipyfft_pad_w2", 1.3)]

    # Rates against OpenBLAS sgemm 2048^3 at 2 threads, measured by `lucid bench` minutes apart
    # from Lucid's own (the shared C harness is printed beside it).
    openblas = find(lucid, case="sgemm_square_2048", threads=2, config_library="openblas")
    limit = blas[1] if len(blas) > 1 else None
    peak = gflops(openblas) if openblas else None
    rates = []
    for loop in ("packed", "strips"):
        own = find(lucid, case="sgemm_square_2048", threads=2, config_library="lucid", config_loop=loop)
        if own and peak:
            rates.append((f"sgemm 2048³ own ({loop})", "OpenBLAS 2048³ 2 thr", gflops(own) / peak, 0.9))
    conv = find(lucid, case="conv2d")
    if conv and peak:
        rates.append(("conv2d fwd+bwd GFLOP/s", "OpenBLAS 2048³ 2 thr", gflops(conv) / peak, 0.7))

    machine = next((r for r in lucid if r.get("case") == "unet2d_train"), next((r for r in lucid if "cpu" in r), {}))
    print(f"machine: {machine.get('cpu', '?')}, isa {machine.get('isa', '?')}, threads {machine.get('threads', '?')}, "
          f"planner {machine.get('planner', '?')}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    if peak:
        print(f"OpenBLAS sgemm 2048³, 2 threads: {peak:.0f} GFLOP/s in lucid bench"
              + (f", {limit['gflops_median']:.0f} in sgemm_limit.c" if limit else ""))
    planning = {r["case"]: r["config"]["planning_s"] for r in lucid if "planning_s" in r.get("config", {})}
    if planning:
        print("convolution planning (first step), s: " + ", ".join(f"{k} {v:.2f}" for k, v in planning.items()))
    print(f"{'lucid case':<28} {'reference':<24} {'ratio':>8} {'target':>7}")
    for a, b, r, t in rows + rates:
        rs = "n/a" if r is None else f"{r:.2f}x"
        ts = "" if t is None else f"{t:.1f}x"
        print(f"{a:<28} {b:<24} {rs:>8} {ts:>7}")
    print(f"all JSON lines: {path}")


if __name__ == "__main__":
    main()
