#!/usr/bin/env bash
# The connection_swap demo: a director, two workers and a client; the worker
# serving the client's stream is killed (SIGKILL, no goodbye) mid-stream, and
# the client's stream must carry on from another worker without a gap in its
# sequence numbers, on the same connection id.
#
# Exits 0 only if the client saw a contiguous sequence across at least one
# worker switch on one connection id. Every process it starts is stopped on
# the way out, also on failure or Ctrl-C.
#
#   bash examples/connection_swap/run_demo.sh        (or: npm run demo)
#
# Environment: SWAP_BASE_PORT (default 7100; uses base..base+2 for RPC and
# base+100..base+102 for gossip), SWAP_TOKENS (120), SWAP_KILL_AFTER (tokens
# before the kill, 30), SWAP_KEEP_LOGS=1 to keep the logs directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
node="$root/node_modules/.bin/node"
[ -x "$node" ] || { echo "run_demo: $node not found; run 'npm ci' first" >&2; exit 2; }

base="${SWAP_BASE_PORT:-7100}"
tokens="${SWAP_TOKENS:-120}"
kill_after="${SWAP_KILL_AFTER:-30}"
work="$(mktemp -d "${TMPDIR:-/tmp}/connection_swap.XXXXXX")"
pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ] || [ "${SWAP_KEEP_LOGS:-0}" = 1 ]; then
    echo "run_demo: logs kept in $work" >&2
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "----- $(basename "$log") (last 15 lines)" >&2
      tail -n 15 "$log" >&2 || true
    done
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Throw-away TLS material: a CA and one node certificate for localhost / 127.0.0.1.
certs="$work/certs"
mkdir -p "$certs"
# DevTls (shoal/testing) makes them in memory with node:crypto; no openssl needed.
(cd "$root" && "$node" --input-type=module -e '
  import { writeFileSync } from "node:fs"
  import { Redacted } from "effect"
  import * as DevTls from "'"$root"'/src/testing/DevTls.ts"
  const dir = process.argv[1]
  const authority = DevTls.makeAuthority({ name: "connection_swap demo CA" })
  const node = authority.issue({ name: "localhost" })
  writeFileSync(`${dir}/ca.pem`, authority.certificate.pem)
  writeFileSync(`${dir}/node.pem`, node.certificate.pem)
  writeFileSync(`${dir}/node.key`, Redacted.value(node.key), { mode: 0o600 })
' "$certs")
export SWAP_TLS_DIR="$certs"

director_rpc="127.0.0.1:$base"
director_gossip="127.0.0.1:$((base + 100))"

start() { # name script [VAR=value ...]
  local name="$1" script="$2"; shift 2
  env "$@" "$node" "$script" > "$work/$name.log" 2>&1 &
  pids+=("$!")
  # the roles we kill ourselves are not jobs the shell should report on
  [ "$name" = client ] || disown "$!"
  eval "pid_${name//-/_}=$!"
}

# wait_for <file> <pattern> <seconds> <what>
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "run_demo: timed out waiting for $4" >&2; return 1; fi
    sleep 0.1
  done
}

echo "== starting the director on $director_rpc (gossip $director_gossip)"
start director "$here/director.ts" SWAP_RPC="$director_rpc" SWAP_GOSSIP="$director_gossip"
wait_for "$work/director.log" "director serving" 20 "the director"

for i in 1 2; do
  label="worker-$(printf "\\x$(printf %x $((96 + i)))")"
  echo "== starting $label on 127.0.0.1:$((base + i)) (gossip 127.0.0.1:$((base + 100 + i)))"
  start "$label" "$here/worker.ts" SWAP_LABEL="$label" SWAP_RPC="127.0.0.1:$((base + i))" \
    SWAP_GOSSIP="127.0.0.1:$((base + 100 + i))" SWAP_SEEDS="$director_gossip"
done
wait_for "$work/director.log" "worker worker-a" 20 "the director to discover worker-a"
wait_for "$work/director.log" "worker worker-b" 20 "the director to discover worker-b"

echo "== starting the client ($tokens tokens)"
start client "$here/client.ts" SWAP_DIRECTOR="$director_rpc" SWAP_TOKENS="$tokens"
wait_for "$work/client.log" "#$(printf %03d "$kill_after")" 30 "the client to receive $kill_after tokens"

serving="$(grep -m1 -oE 'worker-[ab]' "$work/client.log")"
victim_pid_var="pid_${serving//-/_}"
echo "== the stream is served by $serving; killing it (SIGKILL, pid ${!victim_pid_var})"
kill -KILL "${!victim_pid_var}"

client_status=0
wait "$pid_client" || client_status=$?
summary="$(grep -m1 '^SUMMARY ' "$work/client.log" | sed 's/^SUMMARY //')"
echo "== client output (first and last lines)"
head -n 3 "$work/client.log"
echo "..."
grep -E '\(\+[0-9]+ ms\)' "$work/client.log" | head -n 5 || true
echo "..."
tail -n 3 "$work/client.log"
echo "== director saw"
grep -E "moved|failed at|worker worker-[ab] (failed|suspected|left)" "$work/director.log" | sed -E 's/^\[[^]]*\] [A-Z]+ \(#[0-9]+\): /  /' | head -n 6 || true

if [ "$client_status" != 0 ] || [ -z "$summary" ]; then
  echo "FAIL: the client exited with $client_status" >&2
  exit 1
fi
check() { "$node" -e "const s = JSON.parse(process.argv[1]); process.exit(($1) ? 0 : 1)" "$summary"; }
field() { "$node" -e "const s = JSON.parse(process.argv[1]); console.log($1)" "$summary"; }
if check "s.contiguous && s.switches >= 1 && s.connectionIds.length === 1"; then
  echo
  echo "PASS: $(field 's.tokens') tokens, contiguous 0..$(field 's.tokens - 1') on connection $(field 's.connectionIds[0]'),"
  echo "      $(field 's.switches') switch(es) ($(field 's.workers.join(" -> ")')), longest gap $(field 's.longestGapMillis') ms (around the switch: $(field 's.switchGapsMillis.join(", ")') ms)"
  exit 0
fi
echo "FAIL: contiguous=$(field 's.contiguous') switches=$(field 's.switches') connections=$(field 's.connectionIds.length')" >&2
exit 1
