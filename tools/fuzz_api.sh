#!/usr/bin/env bash
# Fuzzes the wallet platform's HTTP API from its own OpenAPI document with schemathesis: a
# `yitong serve` on a fresh SQLite data directory, a registered phone's token and a Beijing
# operator key for the routes that need them, then generated requests (examples, coverage,
# fuzzing) for $YITONG_FUZZ_SECONDS (default 120). Fails on any 5xx and on answers that break
# the document (status, content type, schema).
#   tools/fuzz_api.sh YITONG_BINARY SCHEMATHESIS_BINARY
set -euo pipefail
yitong="$1"
schemathesis="$2"
seconds="${YITONG_FUZZ_SECONDS:-120}"
here="$(cd "$(dirname "$0")" && pwd)"

work="$(mktemp -d)"
"$yitong" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/serve.out" 2>"$work/serve.log" &
server=$!
stop() {
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT

url=""
for _ in $(seq 1 100); do
    url="$(sed -n 's|^yitong: wallet platform API at \(http://[0-9.:]*\).*|\1|p' "$work/serve.out")"
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "yitong serve did not start"; cat "$work/serve.log"; exit 1; }

YITONG_FUZZ_PHONE_TOKEN="$(python3 - "$url" <<'PY'
import json, sys, urllib.request
body = json.dumps({"device_id": "fuzz-phone", "se_id": "SE-fuzz", "maker": "Xiaomi", "model": "Mi 6"}).encode()
request = urllib.request.Request(sys.argv[1] + "/v1/phones", data=body, headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
PY
)"
YITONG_FUZZ_OPERATOR_KEY="$("$yitong" operator key new --city beijing --name fuzz --data-dir "$work/data" 2>/dev/null)"
export YITONG_FUZZ_PHONE_TOKEN YITONG_FUZZ_OPERATOR_KEY
# Bodies for media types schemathesis cannot make itself (JSON Lines uploads). Rotating the
# phone's token is left out: the fuzzer's token would die with it (tested in the server's tests).
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks

fuzz() {
    "$schemathesis" --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --request-timeout 10 \
        --workers 2 \
        --suppress-health-check all \
        --exclude-path /v1/phones/me/token \
        --no-color \
        "$@"
}
# Every route with a Beijing operator key: the clearing house's routes answer it 403.
fuzz --max-time "$seconds"
# Then the clearing house's routes (what spans cities, and any city's card) with its key, for
# their 200 answers.
YITONG_FUZZ_OPERATOR_KEY="$("$yitong" operator key new --clearing-house --name fuzz --data-dir "$work/data" 2>/dev/null)"
export YITONG_FUZZ_OPERATOR_KEY
fuzz --max-time "$(( seconds / 4 + 1 ))" --include-path-regex '^/v1/operator/(settlement|ridership|ledger/|cards/)'
