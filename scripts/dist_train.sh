#!/usr/bin/env bash
# Distributed training on one node: scripts/dist_train.sh NUM_PROCESSES OPTION_FILE [train.py arguments...]
# (scripts/dist_test.sh runs test.py the same way). Multi-node: run torchrun yourself with
# --nnodes/--node_rank/--master_addr (env:// rendezvous). PORT sets the master port (default 4321); PYTHON the
# interpreter (default: python).
set -euo pipefail
ENTRY=${ENTRY:-train}
if [ $# -lt 2 ]; then
  echo "usage: $0 NUM_PROCESSES OPTION_FILE [extra ${ENTRY}.py arguments]" >&2
  exit 2
fi
NPROC=$1
CONFIG=$2
shift 2
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m torch.distributed.run --nproc_per_node="$NPROC" --master_port="${PORT:-4321}" \
  "basicsr/${ENTRY}.py" -opt "$CONFIG" --launcher pytorch "$@"
