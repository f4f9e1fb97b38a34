#!/usr/bin/env bash
# Checkpoints of a 2-GPU pipeline (NCCL) resume bitwise, and on another layout:
#   straight  6 steps, 2 stages on 2 GPUs;
#   split     3 steps (checkpoint), then --resume auto to step 6: steps 4-6 have the
#             straight run's losses bit for bit (GPU kernels are deterministic);
#   moved     the step-3 checkpoint resumed on 1 GPU, and as 2 replicas of 1 stage:
#             step 4's loss within bf16 rounding of the straight run's.
# Needs 2 GPUs and a CUDA build; exits 77 (skipped) otherwise.
set -uo pipefail

source "$(dirname "$0")/two_gpu_setup.sh" gpu_resume "$@"
command -v python3 >/dev/null || skip "needs python3 (reads metrics.jsonl)"
cat >"$DIR/tiny.pbtxt" <<CFG
model { layers: 4 hidden: 128 heads: 2 vocab: 512 max_positions: 64 }
train { steps: 6 seq_len: 64 microbatch_size: 4 microbatches: 4 eval_batches: 2 eval_every: 0 device: CUDA }
data { train: "$DIR/data/t_train_*.bin" val: "$DIR/data/t_val_*.bin" }
optim { lr_schedule: CONSTANT lr: 0.01 clip_grad_norm: 1.0 }
parallel { stages: 2 }
CFG

train() {  # NAME NP [args...]
  local name=$1 np=$2; shift 2
  mpirun -np "$np" "$BATON" train --config "$DIR/tiny.pbtxt" --run-dir "$DIR/$name" "$@" >"$DIR/$name.log" 2>&1 ||
    { tail -20 "$DIR/$name.log"; fail "$name: baton train failed"; }
}
# The loss of step $2 in run $1's metrics.jsonl, as written (17 significant digits).
loss() {
  python3 -c 'import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("step") == int(sys.argv[2]) and "loss" in j: print(repr(j["loss"]))' "$DIR/$1/metrics.jsonl" "$2"
}

train straight 2
train split 2 --set train.steps=3
train split 2 --resume auto
for step in 4 5 6; do
  a=$(loss straight $step) b=$(loss split $step)
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "step $step: straight loss $a, resumed $b (expected the same bits)"
done
echo "split: steps 4-6 equal the straight run bitwise"

for layout in "1 1" "1 2"; do
  set -- $layout
  name=moved-$1x$2
  train "$name" $(($1 * $2)) --resume "$DIR/split/ckpt/step_00000003" --set parallel.stages=$1 --set parallel.replicas=$2 \
    --set train.steps=4 --set train.microbatches=$((4 / $2))
  a=$(loss straight 4) b=$(loss "$name" 4)
  python3 -c "import sys; a, b = float('$a'), float('$b'); sys.exit(0 if abs(a - b) <= 2e-3 * abs(a) else 1)" ||
    fail "$name: step 4 loss $b, straight run $a (expected within 2e-3)"
  echo "$name: step 4 loss $b vs $a"
done
echo "PASSED"
