#!/usr/bin/env bash
# Distributed training on one node: scripts/dist_train.sh NUM_GPUS OPTION_FILE [train.py args...]
# Multi-node: run torchrun with --nnodes/--node_rank/--master_addr yourself (env:// rendezvous).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NUM_PROCESSES OPTION_FILE [extra train.py arguments]" >&2
  exit 2
fi
GPUS=$1
CONFIG=$2
shift 2
PORT=${PORT:-4321}
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nproc_per_node="$GPUS" --master_port="$PORT" \
  basicsr/train.py -opt "$CONFIG" --launcher pytorch "$@"
