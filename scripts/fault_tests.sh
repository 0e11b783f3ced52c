#!/usr/bin/env bash
# Fault tests of the built `lucid` binary (`make test-faults`):
#  1. SIGKILL a training run that checkpoints every 2 steps, 20 times at random moments; after
#     each kill the folder must load (`lucid predict`) and resume (`lucid train --resume`).
#  2. Two `lucid train` on one folder: the second refuses (the folder's flock), and a killed
#     run's lock never blocks --resume (covered by 1).
#  3. A flipped bit in a weights file: `lucid predict` refuses it, naming the file.
#  4. A full disk (a 1 MiB tmpfs in a private mount namespace: as root, or through an
#     unprivileged user namespace) while checkpointing and while writing a prediction: a
#     one-line error, the previous checkpoint intact and loadable, no partial output left.
# Needs only bash, coreutils and util-linux (unshare, mount). KILLS=n changes the kill count.
set -uo pipefail
cd "$(dirname "$0")/.."
LUCID="$PWD/.build/release/lucid"
[ -x "$LUCID" ] || { echo "build first: $LUCID is missing"; exit 2; }
KILLS=${KILLS:-20}
WORK=$(mktemp -d /tmp/lucid-faults.XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
step_of() { sed -n 's/^ *"step" *: *\([0-9]*\).*/\1/p' "$1/lucid.json" | head -1; }

"$LUCID" simulate brightfield --output data --count 2 --shape 64,64 --seed 1 >/dev/null 2>&1 \
  || { echo "cannot simulate the data"; exit 2; }
cat > recipe.yaml <<EOF
method: noise2self
data: {train: "$WORK/data/signal/*.tif", axes: YX, patch: [32, 32], validation: 0.25}
model: {depth: 1, filters: 8, norm: none}
training: {steps: 1000000, batch: 4, lr: 1.0e-3, seed: 3, validate_every: 2}
EOF
IMAGE="$WORK/data/signal/000.tif"

# 1. SIGKILL at random moments.
echo "== $KILLS SIGKILLs while checkpointing every 2 steps"
loaded=0 resumed=0 previous=0
for i in $(seq 1 "$KILLS"); do
  if [ "$i" = 1 ]; then flags=(); else flags=(--resume); fi
  "$LUCID" train recipe.yaml -o run "${flags[@]}" >"train-$i.log" 2>&1 &
  pid=$!
  if [ "$i" = 1 ]; then
    for _ in $(seq 1 300); do [ -f run/lucid.json ] && break; sleep 0.05; done
  fi
  sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; fail "run $i ended by itself before the kill: $(tail -1 "train-$i.log")"; continue
  fi
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  if [ "$i" -gt 1 ] && grep -q "lucid train:" "train-$i.log"; then
    fail "resume $i failed: $(grep 'lucid train:' "train-$i.log")"
  elif [ "$i" -gt 1 ]; then resumed=$((resumed + 1)); fi
  step=$(step_of run)
  if "$LUCID" predict run "$IMAGE" -o "pred-$i.tif" >"predict-$i.log" 2>&1 && [ -f "pred-$i.tif" ]; then
    loaded=$((loaded + 1))
  else
    fail "kill $i: the folder does not load: $(tail -1 "predict-$i.log")"
  fi
  [ -n "$step" ] && [ "$step" -ge "$previous" ] || fail "kill $i: step went from $previous to '$step'"
  previous=${step:-0}
  ls -a run | grep -q '\.tmp-' && echo "   (kill $i landed during a save: a temporary file is left until the next save)"
  echo "   kill $i: committed step $step"
done
"$LUCID" train recipe.yaml -o run --resume --set training.steps=$((previous + 4)) >final.log 2>&1 \
  && grep -q "completed at step $((previous + 4))" final.log && resumed=$((resumed + 1)) \
  || fail "the last resume did not complete: $(tail -1 final.log)"
ls -a run | grep -q '\.tmp-' && fail "temporary files left after a completed save: $(ls -a run)"
echo "loadable after $loaded/$KILLS kills; resumed $resumed/$KILLS times (the 1st run is fresh, the $KILLS-th resume runs to completion)"
[ "$loaded" = "$KILLS" ] && [ "$resumed" = "$KILLS" ] && ok "$KILLS/$KILLS kills loadable and resumable"

# 2. Two runs on one folder.
echo "== two lucid train on one folder"
"$LUCID" train recipe.yaml -o run --resume >first.log 2>&1 &
first=$!
sleep 1
if second=$("$LUCID" train recipe.yaml -o run --resume 2>&1); then
  fail "the second run was not refused"
else
  echo "   $(echo "$second" | tail -1)"
  echo "$second" | grep -q "another lucid train (pid $first) is writing this checkpoint folder" \
    && ok "the second run is refused, naming the first one's pid" || fail "unexpected message: $second"
fi
kill -9 "$first"; wait "$first" 2>/dev/null

# 3. A flipped bit.
echo "== a flipped bit in the weights"
cp -r run flipped
weights=$(sed -n 's/^ *"weightsBest" *: *"\(.*\)".*/\1/p' flipped/lucid.json)
size=$(stat -c %s "flipped/$weights"); offset=$((size - 3))
byte=$(od -An -tu1 -j "$offset" -N1 "flipped/$weights" | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 16)))" | dd of="flipped/$weights" bs=1 seek="$offset" conv=notrunc 2>/dev/null
if out=$("$LUCID" predict flipped "$IMAGE" -o flipped.tif 2>&1); then
  fail "a damaged weights file was loaded"
else
  echo "   $out"
  [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "flipped/$weights: its SHA-256 differs" \
    && ok "refused in one line naming $weights" || fail "unexpected message: $out"
fi

# 4. A full disk.
echo "== a full disk"
if [ "$(id -u)" = 0 ]; then ns=(unshare --mount --propagation private); else ns=(unshare --user --map-root-user --mount); fi
if ! "${ns[@]}" true 2>/dev/null; then
  echo "skipping the full-disk tests: cannot make a private mount namespace (${ns[*]})"
else
  "${ns[@]}" bash -s "$LUCID" "$IMAGE" > diskfull.log 2>&1 <<'EOF'
LUCID=$1; IMAGE=$2
mkdir -p small && mount -t tmpfs -o size=1m tmpfs small || { echo "SKIP cannot mount a tmpfs"; exit 0; }
step_of() { sed -n 's/^ *"step" *: *\([0-9]*\).*/\1/p' "$1/lucid.json" | head -1; }
"$LUCID" train recipe.yaml -o small/run > train.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -f small/run/lucid.json ] && break; sleep 0.05; done
sleep 0.3
dd if=/dev/zero of=small/filler bs=4k 2>/dev/null
for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -9 $pid 2>/dev/null && echo "FAIL the run kept going on a full disk"
wait $pid
status=$?
errors=$(grep -c "^lucid train:" train.log)
echo "train exit $status: $(grep '^lucid train:' train.log)"
[ "$status" != 0 ] && [ "$errors" = 1 ] && grep "^lucid train:" train.log | grep -q "No space left on device" \
  && echo "OK checkpointing on a full disk fails in one line" || echo "FAIL checkpointing on a full disk: $(tail -3 train.log)"
ls -a small/run | grep -q '\.tmp-' && echo "FAIL temporary files left on the full disk: $(ls -a small/run)"
before=$(step_of small/run)
"$LUCID" predict small/run "$IMAGE" -o elsewhere.tif >/dev/null 2>&1 \
  && echo "OK the previous checkpoint (step $before) is intact and loads" || echo "FAIL the previous checkpoint does not load"
"$LUCID" predict small/run "$IMAGE" -o small/out.tif > predict.log 2>&1
status=$?
echo "predict exit $status: $(grep '^lucid predict:' predict.log)"
[ "$status" != 0 ] && [ "$(grep -c '^lucid predict:' predict.log)" = 1 ] && ! ls -a small | grep -q 'out\.tif' \
  && echo "OK prediction output on a full disk fails in one line and leaves no file" \
  || echo "FAIL prediction on a full disk: $(cat predict.log); $(ls -a small)"
rm small/filler
"$LUCID" train recipe.yaml -o small/run --resume --set training.steps=$((before + 4)) > resume.log 2>&1 \
  && grep -q "completed at step $((before + 4))" resume.log && echo "OK with space again the run resumes and completes" \
  || echo "FAIL resume after freeing space: $(tail -1 resume.log)"
EOF
  sed 's/^/   /' diskfull.log
  grep -q "^SKIP" diskfull.log && echo "skipping the full-disk tests: $(grep '^SKIP' diskfull.log)"
  while read -r line; do fail "${line#FAIL }"; done < <(grep "^FAIL" diskfull.log)
  grep -c "^OK" diskfull.log | grep -qx 4 && ok "full disk: 4/4 checks"
fi

echo
if [ "$failures" = 0 ]; then echo "fault tests passed"; else echo "$failures fault test(s) failed"; exit 1; fi
