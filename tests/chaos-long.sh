#!/usr/bin/env bash
# The long chaos run (issue 13): kill -9 the agent KILLS times per model while it prints
# receipts of one identical total, with keypad receipts, garbled ACKs, paper-outs and
# emulator power cuts mixed in. Prints, per model: receipts requested, ФН receipts
# (and how many came from the keypad), done, needs_attention with reasons, duplicated,
# extra prints and wrong totals. Not part of CI (it takes long); CI runs 8 kills.
#
#   tests/chaos-long.sh            # 1000 kills per model
#   KILLS=200 tests/chaos-long.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${KILLS:-1000}"
# neva-01-f is Neva-01-F on the УМКА HTTP API; neva-01-f@atol on ATOL.
for model in azur-01f neva-01-f neva-01-f@atol; do
    KKM_CHAOS_KILLS="$KILLS" KKM_CHAOS_MODEL="$model" \
        cargo test --release --test chaos mixed -- --nocapture 2>&1 | grep -E "^mixed chaos|panicked|FAILED|test result"
done
