#!/usr/bin/env bash
# Distributed testing on one node: scripts/dist_test.sh NUM_PROCESSES OPTION_FILE [test.py arguments...]
ENTRY=test exec "$(dirname "$0")/dist_train.sh" "$@"
