# Sourced by the 2-GPU shell tests: `source two_gpu_setup.sh NAME "$@"`.
# Checks the arguments (BATON_BIN MAKE_TEST_SHARDS), exits 77 (skipped) without
# 2 GPUs, and leaves BATON, DIR (removed on exit) with DIR/data holding the
# tiny learnable corpus, fail/skip/say, and Open MPI's environment for root.
NAME=$1
shift
if [ $# -ne 2 ]; then
  echo "usage: $0 BATON_BIN MAKE_TEST_SHARDS" >&2
  exit 2
fi
BATON=$(realpath "$1")
T0=$(date +%s)
say() { echo "$NAME [$(($(date +%s) - T0))s]: $*"; }
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*"; exit 1; }

gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
[ "${gpus:-0}" -ge 2 ] || skip "needs 2 GPUs (found ${gpus:-0})"

DIR=$(mktemp -d "/tmp/baton-$NAME.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/data" && "$(realpath "$2")" "$DIR/data" >/dev/null || fail "make_test_shards"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
command -v ssh >/dev/null 2>&1 || export OMPI_MCA_plm=^rsh
