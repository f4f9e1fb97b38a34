#!/usr/bin/env bash
# baton on several machines without a batch system: Open MPI's mpirun with a
# hostfile. An example to copy and edit, e.g. for 2 nodes of 8 GPUs each:
#
#   cat > hosts <<EOF
#   node1 slots=8
#   node2 slots=8
#   EOF
#   BATON_HOSTFILE=hosts BATON_NODES=2 BATON_RANKS_PER_NODE=8 \
#   BATON_CONFIG=configs/gpt2-1.5b-gpu.pbtxt BATON_RUN_DIR=/shared/runs/my-run \
#       launch/mpirun-multinode.sh --set train.device=CUDA \
#       --set parallel.stages=8 --set parallel.replicas=2 --set checkpoint.every=500
#
# Arguments after the script's name go to `baton train` as they are.
#
# What it needs:
# - The same baton binary, config and data paths on every node (a shared file
#   system, or identical copies), and passwordless ssh from this machine to
#   every host in the hostfile (mpirun starts its daemons through ssh).
# - BATON_RUN_DIR on a file system all ranks share: every rank writes its
#   part of each checkpoint into RUN_DIR/ckpt/, and rank 0 commits it.
# - World size = nodes x ranks per node = parallel.stages x parallel.replicas.
#
# One rank per GPU (with --set train.device=CUDA or train.device: CUDA in the
# config): give every host slots=G, its number of GPUs, and set
# BATON_RANKS_PER_NODE=G. --map-by ppr:G:node places G ranks on each node, in
# order (ranks 0..G-1 on the first host, G..2G-1 on the second, ...); each
# rank takes the GPU of its node-local rank (0..G-1), or the only GPU it sees
# when CUDA_VISIBLE_DEVICES shows it one, or BATON_GPU=<index> when that is
# set (the same index for every rank: for one rank per node). Keep pipeline
# stages that talk most to each other on one node: world rank = replica x
# stages + stage, so with stages <= G a whole pipeline stays inside a node
# (NVLink) and only the data-parallel gradient sums cross nodes.
#
# Environment: mpirun does not pass this machine's environment to the ranks
# of other hosts by itself; the script adds -x for every NCCL_* variable,
# BATON_GPU, CUDA_VISIBLE_DEVICES (the same value on every host), PATH and
# LD_LIBRARY_PATH when they are set, and for the names in BATON_PASS_ENV
# (split at spaces, e.g. "UCX_TLS OMP_NUM_THREADS"). NCCL_NVLS_ENABLE=0 turns
# NVLink SHARP (multicast) off: keep it on machines where multicast objects
# cannot be created (it is off here by default; export NCCL_NVLS_ENABLE=1 to
# try it). NCCL_DEBUG=WARN reports NCCL problems without the per-call noise;
# NCCL_SOCKET_IFNAME (e.g. ib0, eth0) / NCCL_IB_HCA (e.g. mlx5_0,mlx5_1) pick
# the network where NCCL's guess is wrong.
#
# A hung or dead rank: parallel.comm_timeout_seconds (600 by default; 0 =
# never) bounds every NCCL send, receive and gradient sum; past it the waiting
# rank names itself and the operation and aborts the whole job. Run the
# script again to continue from the last checkpoint.
#
# Stopping and resuming: `--resume auto` continues from RUN_DIR/ckpt/LATEST if
# there is one, so running this script again continues the run. To stop a run
# cleanly, send SIGUSR1 to mpirun (on the machine where this script runs):
#
#   kill -USR1 <pid of mpirun>        # or of this script, which passes it on
#
# mpirun forwards SIGUSR1 (and SIGUSR2) to every rank; the ranks agree at the
# next step boundary, write a checkpoint and exit 0. SIGTERM or SIGINT to
# mpirun kills the ranks at once instead (only the last periodic checkpoint
# survives). So this script starts mpirun in a session of its own (setsid:
# Ctrl-C in the terminal reaches only the script) and turns its own SIGINT,
# SIGTERM and SIGUSR1 into SIGUSR1 for mpirun: Ctrl-C, `kill <pid of this
# script>` and `kill -USR1 <pid of mpirun>` all checkpoint and stop. A second
# Ctrl-C stops the script without waiting (mpirun goes on until its ranks
# have checkpointed); kill -KILL mpirun if a rank hangs.
set -uo pipefail

BATON_BIN=${BATON_BIN:-build/launch/baton}
BATON_CONFIG=${BATON_CONFIG:-configs/tiny-gpt.pbtxt}
BATON_RUN_DIR=${BATON_RUN_DIR:-runs/multinode}
BATON_HOSTFILE=${BATON_HOSTFILE:-hosts}
BATON_NODES=${BATON_NODES:-2}
BATON_RANKS_PER_NODE=${BATON_RANKS_PER_NODE:-8}  # GPUs per node
BATON_PASS_ENV=${BATON_PASS_ENV:-}
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}

if [ ! -r "$BATON_HOSTFILE" ]; then
  echo "baton: no hostfile '$BATON_HOSTFILE' (BATON_HOSTFILE): one line per node, 'HOST slots=GPUS'" >&2
  exit 2
fi
np=$((BATON_NODES * BATON_RANKS_PER_NODE))
# Variables the remote ranks get from here: NCCL's settings, the GPU choice,
# the paths, and those named in BATON_PASS_ENV.
pass_env=()
while read -r v; do
  case "$v" in NCCL_*) pass_env+=(-x "$v") ;; esac
done < <(compgen -e)
read -r -a more_env <<<"$BATON_PASS_ENV"
for v in BATON_GPU CUDA_VISIBLE_DEVICES PATH LD_LIBRARY_PATH "${more_env[@]}"; do
  [ -n "${!v+set}" ] && pass_env+=(-x "$v")
done
cmd=(mpirun --hostfile "$BATON_HOSTFILE" -np "$np"
  --map-by "ppr:${BATON_RANKS_PER_NODE}:node"
  --bind-to none # each rank runs its own CPU threads; or --bind-to numa
  "${pass_env[@]}"
  "$BATON_BIN" train --config "$BATON_CONFIG" --run-dir "$BATON_RUN_DIR" --resume auto "$@")
echo "baton: ${cmd[*]}"

mpirun_pid=""
# shellcheck disable=SC2317  # called from the traps
stop() {
  echo "baton: got SIG$1; SIGUSR1 to mpirun: the ranks checkpoint at the next step and stop"
  trap - INT  # a second Ctrl-C gets the default behaviour
  if [ -n "$mpirun_pid" ]; then kill -USR1 "$mpirun_pid" 2>/dev/null || true; fi
}
trap 'stop INT' INT
trap 'stop TERM' TERM
trap 'stop USR1' USR1

# setsid execs mpirun in this same process (a background job of a script leads
# no process group), so $! is mpirun's pid.
setsid "${cmd[@]}" &
mpirun_pid=$!
# wait returns early when a trapped signal arrives; wait until mpirun is gone.
while kill -0 "$mpirun_pid" 2>/dev/null; do
  wait "$mpirun_pid"
done
wait "$mpirun_pid"
