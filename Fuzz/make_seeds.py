#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzz harnesses into Fuzz/seeds/<harness>/ (a few KB
each): real files as tifffile, safetensors and Lucid write them. The checkpoint seeds start from
the lucid.json the fuzz-checkpoint harness writes for its fixture (LUCID_FUZZ_SEED)."""
import json, os, shutil, subprocess, sys
import numpy as np
import tifffile

here = os.path.dirname(os.path.abspath(__file__))
seeds = os.path.join(here, "seeds")
rng = np.random.default_rng(0)


def folder(name):
    path = os.path.join(seeds, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def tiffs():
    d = folder("tiff")
    u16 = rng.integers(0, 65535, (3, 8, 8), dtype=np.uint16)
    f32 = rng.normal(size=(2, 32, 32)).astype(np.float32)
    tifffile.imwrite(f"{d}/imagej_zyx_u16.tif", u16, imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
    tifffile.imwrite(f"{d}/imagej_tzcyx_u8.tif", rng.integers(0, 255, (2, 2, 2, 6, 6), dtype=np.uint8),
                     imagej=True, metadata={"axes": "TZCYX"})
    tifffile.imwrite(f"{d}/bigtiff_f32.tif", f32[:, :8, :8], bigtiff=True)
    tifffile.imwrite(f"{d}/tiled_zlib_f32.tif", f32, tile=(16, 16), compression="zlib")
    tifffile.imwrite(f"{d}/lzw_predictor_u16.tif", u16, compression="lzw", predictor=True)
    tifffile.imwrite(f"{d}/packbits_i16.tif", u16.astype(np.int16), compression="packbits")
    tifffile.imwrite(f"{d}/ome_czyx.ome.tif", rng.integers(0, 4095, (2, 2, 8, 8), dtype=np.uint16),
                     ome=True, metadata={"axes": "CZYX", "PhysicalSizeX": 0.1, "PhysicalSizeZ": 0.3})
    tifffile.imwrite(f"{d}/rgb_contig_u8.tif", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), photometric="rgb")
    tifffile.imwrite(f"{d}/rgb_separate_u16.tif", rng.integers(0, 255, (3, 8, 8), dtype=np.uint16),
                     photometric="rgb", planarconfig="separate")
    tifffile.imwrite(f"{d}/shaped_f64.tif", rng.normal(size=(2, 3, 6, 6)), metadata={"axes": "CZYX"})
    tifffile.imwrite(f"{d}/u32_single.tif", rng.integers(0, 2**31, (6, 6), dtype=np.uint32))


def safetensors():
    from safetensors.numpy import save_file
    d = folder("safetensors")
    save_file({"conv.weight": rng.normal(size=(2, 1, 3, 3)).astype(np.float32),
               "conv.bias": np.zeros(2, np.float32)}, f"{d}/f32.safetensors", metadata={"step": "7"})
    save_file({"a": rng.normal(size=(4,)).astype(np.float16), "b": np.arange(3, dtype=np.int64),
               "c": np.arange(2, dtype=np.int32), "d": np.ones((2, 2), np.float64),
               "e": np.zeros((0, 3), np.float32)}, f"{d}/mixed.safetensors")


def recipes():
    d = folder("recipe")
    root = os.path.join(here, "..", "Recipes")
    for name in sorted(os.listdir(root)):
        if name.endswith(".yaml"):
            shutil.copy(os.path.join(root, name), d)
    with open(f"{d}/with_overrides.yaml", "w") as f:
        f.write("method: care\ndata: {input: low/*.tif, target: high/*.tif, axes: ZYX, patch: [16, 32, 32]}\n"
                "%%\ntraining.steps=50\nmodel.depth=3\ndata.normalize={mode: none}\ndata.patch=[8, 64, 64]\n")


def manifests():
    d = folder("manifest")
    texts = {
        "basic.csv": "signal,target,split\nbf/a.tif,fl/a.tif,train\nbf/b.tif,fl/b.tif,val\nbf/c.tif,fl/c.tif,test\n",
        "channels.csv": "signal,signal_channel,target,target_channel,target2,split\n"
                        "a.tif,0,b.tif,0;2,c.tif,train\n\"x,y.tif\",1,\"q\"\"z.tif\",,d.tif,validation\n",
        "input_crlf.csv": "\ufeffinput,target,extra\r\n/abs/a.tif,b.tif,ignored\r\n\r\n",
    }
    for name, text in texts.items():
        with open(f"{d}/{name}", "w", newline="") as f:
            f.write(text)


def checkpoints(harness):
    d = folder("checkpoint")
    env = dict(os.environ, LUCID_FUZZ_SEED=f"{d}/fixture.json", SWIFT_BACKTRACE="enable=no", ASAN_OPTIONS="detect_leaks=0")
    subprocess.run([harness, "-runs=1"], env=env, check=True, capture_output=True)
    meta = json.load(open(f"{d}/fixture.json"))
    old = json.loads(json.dumps(meta))
    del old["files"]["sha256"]
    json.dump(old, open(f"{d}/without_digests.json", "w"), indent=2)
    lf = json.loads(json.dumps(meta))
    lf.update(method="labelfree", pixelSize=0.29, sourcePixelSize=0.108, signalChannels=[1],
              targetNormalization=lf["normalization"], axes="CZYX", spatialRank=3)
    json.dump(lf, open(f"{d}/labelfree.json", "w"), indent=2)


if __name__ == "__main__":
    tiffs()
    safetensors()
    recipes()
    manifests()
    checkpoints(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, ".build/release/fuzz-checkpoint"))
    for name in sorted(os.listdir(seeds)):
        files = os.listdir(os.path.join(seeds, name))
        size = sum(os.path.getsize(os.path.join(seeds, name, f)) for f in files)
        print(f"{name}: {len(files)} seeds, {size} bytes")
