#!/usr/bin/env bash
# Schemathesis (PyPI) against the agent's OpenAPI document, as CI runs it.
#   tests/schemathesis/run.sh AGENT_BINARY VENV_DIR
# Starts `kkm-agent demo` (an emulated Azur-01F behind a real agent on 127.0.0.1:8765)
# in a throw-away home directory, runs every check on every operation with a bounded
# number of examples and a fixed seed (KKM_ST_SEED overrides it), and exits non-zero on
# any failure. The cache schemathesis writes stays in the throw-away directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1")
st=$(realpath "$2")/bin/schemathesis
work=$(mktemp -d)
HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "$bin" demo >"$work/demo.out" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$work"' EXIT

token=""
for _ in $(seq 1 120); do
    token=$(grep -o '#token=[0-9a-f]*' "$work/demo.out" | head -1 | cut -d= -f2 || true)
    [ -n "$token" ] && break
    kill -0 $demo 2>/dev/null || { cat "$work/demo.out" >&2; echo "demo exited" >&2; exit 1; }
    sleep 0.5
done
[ -n "$token" ] || { cat "$work/demo.out" >&2; echo "demo printed no token in 60 s" >&2; exit 1; }

cd "$work"
timeout 900 "$st" --config-file "$here/schemathesis.toml" run http://127.0.0.1:8765/api/v1/openapi.json \
    -H "Authorization: Bearer $token" --checks all --exclude-checks use_after_free --max-examples "${KKM_ST_EXAMPLES:-30}" \
    --seed "${KKM_ST_SEED:-20261126}" --request-timeout 70 --wait-for-schema 30 --no-color
