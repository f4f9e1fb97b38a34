#!/usr/bin/env bash
# A preempted SLURM job continues where it stopped and computes exactly what an
# uninterrupted run computes.
#
#   slurm_preempt_test.sh BATON_BIN MAKE_TEST_SHARDS TRAIN_SBATCH
#
# Starts a private single-node SLURM (its own munged, slurmctld and slurmd, all
# files under one temporary directory, private ports), trains a tiny model once
# directly with `mpirun -np 2` (the reference), then submits launch/slurm/
# train.sbatch for the same run, signals its batch script with SIGUSR1 part way
# (what --signal=B:USR1@secs does before the time limit), and checks that the
# job checkpointed, requeued itself, started again, finished, and that its
# metrics.jsonl (loss, lr, grad_norm, val_loss by step) equals the reference
# bit for bit.
#
# Environment: SLURM_TEST_STEPS (300) training steps; SLURM_TEST_KEEP=1 keeps
# the temporary directory (logs, runs); SLURM_TEST_DEBUG=1 prints the job's
# state every second while it waits.
#
# Exit status: 0 passed, 1 failed, 77 skipped (not root, SLURM or munge not
# installed, a daemon would not start, or baton without --resume), with the
# reason on stdout. Everything it starts is stopped by pid on exit, whatever
# happens, and checked gone.

# The cleanup functions run from the EXIT trap only:
# shellcheck disable=SC2317
set -uo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 BATON_BIN MAKE_TEST_SHARDS TRAIN_SBATCH" >&2
  exit 2
fi
BATON_BIN_ARG=$(realpath "$1")
MAKE_SHARDS=$(realpath "$2")
SBATCH_SCRIPT=$(realpath "$3")
STEPS=${SLURM_TEST_STEPS:-300}  # about 35 ms each on 2 cores
CKPT_EVERY=25
T0=$(date +%s)

say() { echo "slurm_preempt [$(($(date +%s) - T0))s]: $*"; }
skip() {
  echo "SKIPPED: $*"
  exit 77
}
fail() {
  echo "FAILED: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (to run munged, slurmctld and slurmd)"
for c in munged munge unmunge slurmctld slurmd sbatch scontrol squeue sinfo scancel mpirun; do
  command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (apt-get install slurm-wlm munge openmpi-bin)"
done
"$BATON_BIN_ARG" train --help 2>&1 | grep -q -- "--resume" || skip "$BATON_BIN_ARG train has no --resume"

# Every process this test starts carries this variable (the daemons, and through
# them slurmstepd and the job's processes), so that the final check can find any
# that outlived the cleanup by its pid.
TEST_DIR=$(mktemp -d /tmp/baton-slurm-test.XXXXXX) || fail "mktemp"
export BATON_SLURM_TEST_TAG=$TEST_DIR
# munged wants every directory above its socket searchable by all.
chmod 755 "$TEST_DIR"
MUNGE_DIR=$TEST_DIR/munge
SLURM_DIR=$TEST_DIR/slurm
mkdir -p "$MUNGE_DIR" "$SLURM_DIR/state" "$SLURM_DIR/spool" "$SLURM_DIR/log" "$TEST_DIR/data"
export SLURM_CONF=$SLURM_DIR/slurm.conf
JOB_ID=""
KEEP=${SLURM_TEST_KEEP:-0}  # 1: keep the temporary directory (logs) for a look

# Processes whose environment carries our tag (ours alone, whatever their name).
tagged_pids() {
  local self=$BASHPID f pid files
  mapfile -t files < <(grep -lzxF "BATON_SLURM_TEST_TAG=$TEST_DIR" /proc/[0-9]*/environ 2>/dev/null)
  for f in "${files[@]}"; do
    pid=${f#/proc/}
    pid=${pid%/environ}
    # Not the shell asking; and look again, for the short-lived helpers of this
    # very scan (grep, subshells) are gone or zombies (empty environ) by now.
    [ "$pid" = "$$" ] || [ "$pid" = "$self" ] && continue
    grep -qzxF "BATON_SLURM_TEST_TAG=$TEST_DIR" "$f" 2>/dev/null && echo "$pid"
  done
  return 0
}

# Sends TERM to the pid in a pid file, waits up to 10 s, then KILL.
stop_pidfile() {
  local file=$1 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "slurm_preempt: $file: pid $pid ignored SIGTERM; SIGKILL"
  kill -KILL "$pid" 2>/dev/null
}

cleanup() {
  local rc=$? i left
  trap - EXIT INT TERM
  if [ -n "$JOB_ID" ] && [ -s "$SLURM_DIR/slurmctld.pid" ]; then
    scancel "$JOB_ID" 2>/dev/null
    for i in $(seq 1 100); do
      [ -z "$(squeue -h -j "$JOB_ID" 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_pidfile "$SLURM_DIR/slurmd.pid"
  stop_pidfile "$SLURM_DIR/slurmctld.pid"
  stop_pidfile "$MUNGE_DIR/munged.pid"
  say "cleanup: daemons stopped"
  # slurmstepd and job processes outlive slurmd; anything still tagged is ours.
  for i in $(seq 1 50); do
    left=$(tagged_pids)
    [ -z "$left" ] && break
    sleep 0.1
  done
  if [ -n "$left" ]; then
    echo "slurm_preempt: still running after cleanup, killing:"
    # shellcheck disable=SC2086
    ps -o pid,ppid,args -p "$(echo $left | tr ' ' ',')" 2>/dev/null
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
    sleep 0.5
    [ "$rc" -eq 0 ] && rc=1
  fi
  say "cleanup: checked for leftover processes"
  if [ -n "$(tagged_pids)" ]; then
    echo "slurm_preempt: processes left running: $(tagged_pids)"
    [ "$rc" -eq 0 ] && rc=1
  fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd.log" "$TEST_DIR/job.out"; do
      [ -f "$f" ] && { echo "---- last lines of $f"; tail -n 30 "$f"; }
    done
  fi
  if [ "$KEEP" = 1 ]; then echo "slurm_preempt: kept $TEST_DIR"; else rm -rf "$TEST_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- munge: a private daemon with its own key, socket, pid, log and seed files.
# (munged runs as root here: the key must belong to the user it runs as.)
if command -v mungekey >/dev/null 2>&1; then
  mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null 2>&1
else
  dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
fi
chmod 600 "$MUNGE_DIR/munge.key"
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" --pid-file="$MUNGE_DIR/munged.pid" \
  --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" ||
  skip "munged would not start: $(tail -n 1 "$MUNGE_DIR/munged.log" 2>/dev/null)"
for i in $(seq 1 50); do
  munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && break
  [ "$i" -eq 50 ] && skip "munge -n | unmunge fails on the private munged: $(tail -n 1 "$MUNGE_DIR/munged.log" 2>/dev/null)"
  sleep 0.1
done

# ---- slurm.conf (NOTES.md, "A real single-node SLURM on the CI machine").
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    port_free "$p" && [ "$p" != "${1:-}" ] && {
      echo "$p"
      return 0
    }
  done
  return 1
}
CTLD_PORT=$(pick_port) || skip "no free port"
SLURMD_PORT=$(pick_port "$CTLD_PORT") || skip "no free port"
HOST=$(hostname -s)
# The node line as slurmd sees this machine (NodeName=... CPUs=... RealMemory=...).
NODE_LINE=$(slurmd -C 2>/dev/null | head -n 1)
case "$NODE_LINE" in NodeName=*) ;; *) skip "slurmd -C does not describe this node: $NODE_LINE" ;; esac
cat >"$SLURM_CONF" <<EOF
ClusterName=batontest
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
# socket: the private munged, for auth/munge and cred/munge alike. cred_expire:
# the job credential lifetime, which is also how long slurmd keeps a killed
# job's credential revoked and so how long a requeued job waits (its BeginTime)
# before it may start again; 120 s by default.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
MpiDefault=none
ReturnToService=2
JobRequeue=1
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# Once eligible, the requeued job waits for a scheduling pass: the main one
# runs every sched_interval s (60 by default), backfill every bf_interval s
# (30), and here backfill did not pick the requeued job up reliably.
SchedulerParameters=bf_interval=1,sched_interval=1
KillWait=5
MinJobAge=600
${NODE_LINE} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# slurmd -C appends "UpTime=..." on its own line; drop anything else it may add.
slurmctld -f "$SLURM_CONF" || skip "slurmctld would not start: $(tail -n 2 "$SLURM_DIR/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" || skip "slurmd would not start: $(tail -n 2 "$SLURM_DIR/log/slurmd.log" 2>/dev/null)"
for i in $(seq 1 300); do
  state=$(sinfo -h -N -o "%T" 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  [ "$i" -eq 300 ] && skip "the private SLURM node did not become idle in 30 s (state '$state'): $(tail -n 2 "$SLURM_DIR/log/slurmd.log" 2>/dev/null)"
  sleep 0.1
done
say "munged, slurmctld (port $CTLD_PORT) and slurmd (port $SLURMD_PORT) up; node $HOST idle"

# ---- data and config: a tiny learnable corpus, 2 pipeline stages.
"$MAKE_SHARDS" "$TEST_DIR/data" || fail "make_test_shards"
CONFIG=$TEST_DIR/tiny.pbtxt
cat >"$CONFIG" <<EOF
model { layers: 2 hidden: 128 heads: 4 vocab: 512 max_positions: 32 }
train { steps: $STEPS seq_len: 32 microbatch_size: 4 microbatches: 4 eval_every: 100 eval_batches: 4 log_every: 10 threads: 1 }
data { train: "$TEST_DIR/data/t_train_*.bin" val: "$TEST_DIR/data/t_val_*.bin" }
optim { lr_schedule: CONSTANT lr: 0.03 clip_grad_norm: 1.0 }
parallel { stages: 2 }
EOF

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_WAIT_POLICY=PASSIVE
command -v ssh >/dev/null 2>&1 || export OMPI_MCA_plm=^rsh

# ---- the reference: the same run, uninterrupted, straight under mpirun.
say "reference run: mpirun -np 2, $STEPS steps"
timeout 300 mpirun -np 2 "$BATON_BIN_ARG" train --config "$CONFIG" --run-dir "$TEST_DIR/ref" \
  --set train.threads=1 >"$TEST_DIR/ref.out" 2>&1 || {
  tail -n 20 "$TEST_DIR/ref.out"
  fail "the reference run failed"
}
say "reference run done"

# ---- the SLURM job, preempted part way.
RUN=$TEST_DIR/slurm-run
JOB_ID=$(cd "$TEST_DIR" && BATON_BIN=$BATON_BIN_ARG BATON_CONFIG=$CONFIG BATON_RUN_DIR=$RUN \
  BATON_EXTRA_ARGS="--set train.threads=1 --set checkpoint.every=$CKPT_EVERY" BATON_LAUNCHER=mpirun \
  sbatch --parsable -N1 -n2 --job-name=baton-preempt --chdir="$TEST_DIR" --output="$TEST_DIR/job.out" "$SBATCH_SCRIPT") ||
  fail "sbatch failed: $JOB_ID"
JOB_ID=${JOB_ID%%;*}
say "submitted job $JOB_ID"

job_field() { scontrol show job "$JOB_ID" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
train_lines() { grep -c '"loss"' "$RUN/metrics.jsonl" 2>/dev/null || true; }

# Wait until the job has trained a fifth of its steps, then signal its batch script.
for i in $(seq 1 1200); do
  n=$(train_lines)
  [ "${n:-0}" -ge $((STEPS / 5)) ] && break
  st=$(job_field JobState)
  case "$st" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) fail "job $JOB_ID ended ($st) before it was preempted" ;; esac
  [ "$i" -eq 1200 ] && fail "job $JOB_ID wrote no $((STEPS / 5)) steps in 120 s (state $st, ${n:-0} steps)"
  sleep 0.1
done
say "job $JOB_ID at step ${n}: scancel --signal=USR1 --batch"
scancel --signal=USR1 --batch "$JOB_ID" || fail "scancel --signal=USR1 --batch $JOB_ID"

# Requeued: Restarts=1 and pending again (or already running again).
for i in $(seq 1 600); do
  restarts=$(job_field Restarts)
  st=$(job_field JobState)
  [ "${restarts:-0}" -ge 1 ] && break
  case "$st" in COMPLETED | FAILED | CANCELLED | TIMEOUT) fail "job $JOB_ID ended ($st) instead of requeueing itself" ;; esac
  [ "$i" -eq 600 ] && fail "job $JOB_ID was not requeued within 60 s of SIGUSR1 (state $st)"
  sleep 0.1
done
stopped_at=$(cat "$RUN/ckpt/LATEST" 2>/dev/null)
say "job $JOB_ID requeued ($st, Restarts=$restarts); checkpoint LATEST = ${stopped_at}"
case "$stopped_at" in
  *[0-9]*) stopped_step=$(echo "$stopped_at" | tr -dc '0-9' | sed 's/^0*//') ;;
  *) fail "no checkpoint in $RUN/ckpt/LATEST after SIGUSR1" ;;
esac
if [ "${stopped_step:-0}" -le 0 ] || [ "${stopped_step:-0}" -ge "$STEPS" ]; then
  fail "LATEST names step $stopped_at: not part way through $STEPS steps"
fi
# The training lines up to the checkpoint, timings included: a resumed run keeps
# them as they are, a run started over would write them anew (other timings).
lines_upto() { awk -v s="$1" 'index($0, "\"loss\"") && match($0, /"step":[0-9]+/) && substr($0, RSTART + 7, RLENGTH - 7) + 0 <= s' "$2"; }
lines_upto "$stopped_step" "$RUN/metrics.jsonl" >"$TEST_DIR/before-requeue.jsonl"
[ "$(grep -c . "$TEST_DIR/before-requeue.jsonl")" -eq "$stopped_step" ] ||
  fail "metrics.jsonl has $(grep -c . "$TEST_DIR/before-requeue.jsonl") training lines up to the checkpoint at step $stopped_step"
# The requeued job now waits for its BeginTime, cred_expire (10 s here) after the
# requeue. Not `scontrol update StartTime=now`: slurmd still holds the killed
# run's credential as revoked, refuses the launch and the job ends FAILED.

requeued_at=$(date +%s)
restarted=""
for i in $(seq 1 2400); do
  st=$(job_field JobState)
  if [ -z "$restarted" ] && [ "$st" != PENDING ]; then
    restarted=$(($(date +%s) - requeued_at))
    say "job $JOB_ID running again ${restarted} s after the requeue"
  fi
  [ "${SLURM_TEST_DEBUG:-0}" = 1 ] && [ $((i % 10)) = 0 ] && say "debug: $st $(job_field Reason) EligibleTime=$(job_field EligibleTime) now=$(date +%T) node $(sinfo -h -N -o %T)"
  case "$st" in
    COMPLETED) break ;;
    FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) fail "job $JOB_ID ended $st after its restart" ;;
  esac
  [ "$i" -eq 2400 ] && fail "job $JOB_ID did not complete within 240 s of its requeue (state $st)"
  sleep 0.1
done
say "job $JOB_ID completed (Restarts=$(job_field Restarts), ExitCode=$(job_field ExitCode))"

# ---- checks
grep -q "start 1 (restarts 0)" "$TEST_DIR/job.out" || fail "job.out does not show the first start"
grep -q "start 2 (restarts 1)" "$TEST_DIR/job.out" || fail "job.out does not show the second start"
grep -q "after SIGUSR1; requeueing job $JOB_ID" "$TEST_DIR/job.out" ||
  fail "job.out does not show the batch script requeueing the job after SIGUSR1"
[ "$(job_field Restarts)" = 1 ] || fail "Restarts=$(job_field Restarts), expected 1"
grep -q "not requeueing\|requeueing" <(sed -n '/start 2 (restarts 1)/,$p' "$TEST_DIR/job.out") &&
  fail "the second start requeued again"

# The numbers computed from the data, one record per training or validation
# line (checkpoint lines differ by nature), sorted by kind and step: the resumed
# run must have each step once, equal to the reference.
records() {
  awk '{
    out = ""
    n = split("step loss lr grad_norm val_loss", keys, " ")
    for (k = 1; k <= n; ++k) {
      if (match($0, "\"" keys[k] "\":[^,}]*")) out = out " " substr($0, RSTART, RLENGTH)
    }
    if (index($0, "\"val_loss\"")) print "val" out
    else if (index($0, "\"loss\"")) print "train" out
  }' "$1" | sort -k1,1 -k2,2V
}
lines_upto "$stopped_step" "$RUN/metrics.jsonl" | cmp -s - "$TEST_DIR/before-requeue.jsonl" ||
  fail "the training lines up to step $stopped_step changed after the restart: it did not resume from the checkpoint"
records "$TEST_DIR/ref/metrics.jsonl" >"$TEST_DIR/ref.records"
records "$RUN/metrics.jsonl" >"$TEST_DIR/run.records"
ref_train=$(grep -c '^train' "$TEST_DIR/ref.records")
[ "$ref_train" -eq "$STEPS" ] || fail "the reference has $ref_train training lines, expected $STEPS"
if ! diff -u "$TEST_DIR/ref.records" "$TEST_DIR/run.records" >"$TEST_DIR/records.diff"; then
  head -n 40 "$TEST_DIR/records.diff"
  fail "the preempted and resumed run differs from the uninterrupted one (diff above)"
fi
say "PASSED: stopped at step $stopped_step by SIGUSR1, requeued, resumed; $STEPS steps and $(grep -c '^val' "$TEST_DIR/ref.records") validations equal to the reference bit for bit"
exit 0
