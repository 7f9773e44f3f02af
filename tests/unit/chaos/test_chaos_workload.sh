#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   test_chaos_workload.sh KVSTORE CLIENT CHECKER
#
# The chaos workload without QEMU: kvstore (vm-images/guest/kvstore.c,
# built for the host) on a loopback port, remus-chaos-client's sessions
# against it, remus-chaos-check on the history.  Three runs:
#
#   steady     nothing happens: the history must be valid
#   rollback   kvstore is SIGKILLed mid-run and started again empty (what a
#              failover to a standby that lacks the last epochs looks like
#              to a client): the checker must report lost writes
#   disk       the same kill, but kvstore logs every write (disk=) and
#              replays the log at start: every acknowledged write survives,
#              so the history must be valid; `kvstore mode=check` accepts
#              the log and its counters equal the final reads
set -euo pipefail
kvstore=${1:?kvstore} client=${2:?client} checker=${3:?checker}
T=$(mktemp -d "${TMPDIR:-/tmp}/test_chaos_workload.XXXXXX")
server=
cleanup() {
	[ -z "$server" ] || kill -9 "$server" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "test_chaos_workload: FAIL: $*" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

serve() {   # serve ARGS...: kvstore in the background, up when it listens
	"$kvstore" port="$port" "$@" >>"$T/kvstore.log" 2>&1 &
	server=$!
	for _ in $(seq 100); do
		grep -q "kvstore start" "$T/kvstore.log" 2>/dev/null && [ -n "$(ss -Htln "sport = :$port")" ] && return 0
		sleep 0.05
	done
	fail "kvstore did not start: $(cat "$T/kvstore.log")"
}
stop() { kill -9 "$server"; wait "$server" 2>/dev/null || true; server=; : >"$T/kvstore.log"; }

run() {   # run NAME SECONDS [restart ARGS...]: client for SECONDS, restart in the middle
	local name=$1 secs=$2
	shift 2
	"$client" --server "127.0.0.1:$port" --out "$T/$name.jsonl" --sessions 4 --keys 4 \
		--duration "$secs" --timeout-ms 500 --seed 7 2>"$T/$name.client" &
	local c=$!
	if [ "${1:-}" = restart ]; then
		shift
		# Restart once the client has done some work, not after a fixed
		# sleep: under load (and a python3 start to compute it) the sleep
		# outlasted the client's run and the restart went unseen.
		for _ in $(seq 200); do
			[ "$(wc -l <"$T/$name.jsonl" 2>/dev/null || echo 0)" -lt 500 ] || break
			sleep 0.01
		done
		stop
		serve "$@"
	fi
	wait "$c" || fail "$name: the client failed: $(cat "$T/$name.client")"
}

serve
run steady 1
stop
"$checker" "$T/steady.jsonl" >"$T/steady.out" || fail "steady: $(cat "$T/steady.out")"
echo "steady: $(head -1 "$T/steady.out")"

serve
run rollback 2 restart
stop
set +e
"$checker" "$T/rollback.jsonl" --json "$T/rollback.json" >"$T/rollback.out"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "rollback: the checker exited $rc, want 1 (violations): $(cat "$T/rollback.out")"
grep -q '"lost-write": [1-9]' "$T/rollback.json" || fail "rollback: no lost-write: $(cat "$T/rollback.out")"
echo "rollback: $(tail -n +2 "$T/rollback.out" | grep VIOLATIONS)"

truncate -s 64M "$T/disk.img"
serve disk="$T/disk.img" direct=0
run disk 2 restart disk="$T/disk.img" direct=0
stop
"$checker" "$T/disk.jsonl" >"$T/disk.out" || fail "disk: $(cat "$T/disk.out")"
grep -q '"result":"unknown"\|"error":"connection lost"\|"error":"connect"' "$T/disk.jsonl" ||
	fail "disk: the restart went unnoticed by the client"
"$kvstore" mode=check disk="$T/disk.img" >"$T/disk.check" || fail "disk: kvstore mode=check: $(cat "$T/disk.check")"
python3 - "$T/disk.jsonl" "$T/disk.check" <<'PY' || fail "disk: the log and the final reads differ"
import json, sys
final = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("final") and o["result"] == "ok":
        final[o["key"]] = (o["counter"], len(o["list"]))
log = {}
for line in open(sys.argv[2]):
    if line.startswith("{"):
        o = json.loads(line)
        log[o["key"]] = (o["counter"], o["len"])
if not final or any(log.get(k, (0, 0)) != v for k, v in final.items()):
    sys.exit(f"final reads {final}, log {log}")
print(f"disk: the log matches the final reads of {len(final)} keys")
PY
echo "disk: $(head -1 "$T/disk.out"); $(tail -1 "$T/disk.check")"
