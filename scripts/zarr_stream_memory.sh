#!/usr/bin/env bash
# Peak memory of streaming prediction: writes a 1 GiB OME-Zarr stack (512 × 1024 × 1024 uint16,
# chunks 16 × 256 × 256, Blosc lz4), trains a tiny 3-D Noise2Self net for a few steps, and runs
# `lucid predict` from OME-Zarr to OME-Zarr under GNU time. Prints the peak RSS, the wall time and
# checks the output in Python. Needs python3 with numpy, zarr, numcodecs and tifffile.
#   scripts/zarr_stream_memory.sh [WORKDIR]     (default /tmp/lucid-zarr-stream; ~2.5 GB of disk)
set -euo pipefail
LUCID=$(realpath "${LUCID:-.build/release/lucid}")
DIR=${1:-/tmp/lucid-zarr-stream}
mkdir -p "$DIR"
cd "$DIR"
rm -rf stack.ome.zarr restored.ome.zarr ckpt

python3 - <<'PY'
import json, os, numpy as np, numcodecs, tifffile, zarr
Z, Y, X, cz, cy = 512, 1024, 1024, 16, 256
a = zarr.open_array('stack.ome.zarr/0', mode='w', shape=(Z, Y, X), chunks=(cz, cy, cy), dtype='<u2',
                    zarr_format=2, compressor=numcodecs.Blosc(cname='lz4', clevel=5, shuffle=1))
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:Y, 0:X].astype(np.float32)
for z0 in range(0, Z, cz):   # one chunk row at a time: the generator's memory stays small too
    z = np.arange(z0, z0 + cz, dtype=np.float32)[:, None, None]
    clean = 200 + 800 * (np.sin(xx / 23 + z / 9) * np.cos(yy / 31 - z / 13) > 0.3)
    a[z0:z0 + cz] = rng.poisson(clean).astype(np.uint16)
    if z0 == 0:
        tifffile.imwrite('train.tif', a[0:32, 0:256, 0:256])
json.dump({'zarr_format': 2}, open('stack.ome.zarr/.zgroup', 'w'))
json.dump({'multiscales': [{'version': '0.4', 'name': 'stack',
    'axes': [{'name': n, 'type': 'space', 'unit': 'micrometer'} for n in 'zyx'],
    'datasets': [{'path': '0', 'coordinateTransformations': [{'type': 'scale', 'scale': [0.5, 0.1, 0.1]}]}]}]},
    open('stack.ome.zarr/.zattrs', 'w'))
print(f"wrote stack.ome.zarr: {Z}x{Y}x{X} uint16 = {Z * Y * X * 2 / 2**30:.2f} GiB "
      f"({sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk('stack.ome.zarr') for f in fs) / 2**30:.2f} GiB on disk)")
PY

cat > recipe.yaml <<'YAML'
method: noise2self
data: {train: train.tif, axes: ZYX, patch: [16, 32, 32], validation: 0.1}
model: {depth: 1, filters: 4, convs_per_level: 1}
training: {steps: 20, batch: 4, lr: 1.0e-3, seed: 0, validate_every: 10}
output: ckpt
YAML
"$LUCID" train recipe.yaml 2>&1 | tail -1

/usr/bin/time -v "$LUCID" predict ckpt stack.ome.zarr -o restored.ome.zarr 2> time.log || { cat time.log; exit 1; }
grep -E "slab 32/32|→" time.log | tail -2
grep -E "Maximum resident set size|Elapsed \(wall clock\)" time.log

python3 - <<'PY'
import numpy as np, zarr
a = zarr.open_array('restored.ome.zarr/0', mode='r')
print('restored.ome.zarr/0:', a.shape, a.dtype, 'chunks', a.chunks, 'mean of plane 300:', float(np.asarray(a[300]).mean()))
PY
