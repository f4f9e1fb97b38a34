#!/usr/bin/env bash
# A dead or hung rank brings a 2-GPU job down within the communication timeout,
# with a message naming the waiting rank and the operation (never a silent
# hang). `baton train` runs 2 pipeline stages on 2 GPUs over NCCL with
# parallel.comm_timeout_seconds = 15; once it trains, rank 1 is
#   1. stopped (SIGSTOP: alive, but never sends again): only rank 0's
#      watchdog can end the job;
#   2. killed (SIGKILL).
# Each time mpirun must exit non-zero within the timeout plus a margin.
# Needs 2 GPUs and a CUDA build; exits 77 (skipped) otherwise.
set -uo pipefail

source "$(dirname "$0")/two_gpu_setup.sh" gpu_comm_failure "$@"
TIMEOUT_S=15
MARGIN_S=45  # NCCL abort grace (10 s), MPI teardown, polling
cat >"$DIR/tiny.pbtxt" <<CFG
model { layers: 2 hidden: 128 heads: 2 vocab: 512 max_positions: 64 }
train { steps: 1000000 seq_len: 64 microbatch_size: 4 microbatches: 4 eval_batches: 0 eval_every: 0 log_every: 1 device: CUDA }
data { train: "$DIR/data/t_train_*.bin" val: "$DIR/data/t_val_*.bin" }
optim { lr_schedule: CONSTANT lr: 0.01 }
parallel { stages: 2 comm_timeout_seconds: $TIMEOUT_S }
checkpoint { final: false }
CFG

# run_and_signal NAME SIGNAL: trains until step 5, sends SIGNAL to rank 1, checks how the job ends.
run_and_signal() {
  local name=$1 signal=$2 log=$DIR/$1.log
  mpirun -np 2 "$BATON" train --config "$DIR/tiny.pbtxt" --run-dir "$DIR/run-$name" >"$log" 2>&1 &
  local launcher=$!
  local waited=0
  until grep -q "step *5/" "$log"; do
    sleep 1
    waited=$((waited + 1))
    kill -0 "$launcher" 2>/dev/null || { cat "$log"; fail "$name: the job ended before step 5"; }
    [ $waited -lt 180 ] || { kill -9 "$launcher"; cat "$log"; fail "$name: no step 5 within 180 s"; }
  done
  local pid
  pid=$(grep -o "stage 1 of 2, replica 0 of 1 (pid [0-9]*" "$log" | grep -o "[0-9]*$" | head -1)
  [ -n "$pid" ] || { kill -9 "$launcher"; cat "$log"; fail "$name: no pid for rank 1 in the log"; }
  say "$name: kill -$signal rank 1 (pid $pid)"
  local start=$(date +%s)
  kill "-$signal" "$pid"
  local limit=$((TIMEOUT_S + MARGIN_S)) rc=
  for _ in $(seq 1 "$limit"); do
    if ! kill -0 "$launcher" 2>/dev/null; then
      wait "$launcher"
      rc=$?
      break
    fi
    sleep 1
  done
  local took=$(($(date +%s) - start))
  kill -9 "$pid" 2>/dev/null  # a stopped rank mpirun could not reach
  if [ -z "$rc" ]; then
    kill -9 "$launcher" 2>/dev/null
    tail -20 "$log"
    fail "$name: the job still runs ${limit} s after rank 1 got SIG$signal (a silent hang)"
  fi
  [ "$rc" -ne 0 ] || { tail -20 "$log"; fail "$name: mpirun exited 0 after SIG$signal of rank 1"; }
  say "$name: mpirun exited $rc after ${took} s (limit ${limit} s)"
  LOG=$log
}

run_and_signal hang STOP
# Only the watchdog ends this one: rank 0 names itself, the operation (NCCL, or MPI when
# rank 1 stopped between its GPU work and a host collective) and the timeout.
grep -Eq "world rank 0: (NCCL|MPI) .* did not complete within $TIMEOUT_S s \(parallel.comm_timeout_seconds\)" "$LOG" ||
  { tail -20 "$LOG"; fail "hang: no watchdog message naming rank 0, the operation and the timeout"; }
grep -m1 "did not complete within" "$LOG"

run_and_signal death KILL
echo "PASSED"
