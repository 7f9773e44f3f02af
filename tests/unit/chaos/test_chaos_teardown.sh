#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   test_chaos_teardown.sh REMUS_CHAOS CLIENT CHECKER
#
# remus-chaos leaves nothing behind, on every way out, without booting a
# guest: a fake QEMU and a fake remusd (a script that sleeps) stand in, so
# the lab is built and its "guests" and "daemons" run, but the boot never
# ends.
#
#   error      the fake QEMU exits at once: the run fails saying so, and
#              its namespaces and processes are gone
#   SIGTERM    the run is stopped while it waits for the boot: the same
#   SIGKILL    the run cannot clean up: its namespaces stay, and
#              `remus-chaos reap` (what the next run does first) removes
#              them and kills the processes inside
#
# Needs root (network namespaces); skipped otherwise.
set -euo pipefail
chaos=${1:?remus-chaos} client=${2:?client} checker=${3:?checker}
[ "$(id -u)" = 0 ] || { echo "test_chaos_teardown: SKIP: needs root (network namespaces)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/test_chaos_teardown.XXXXXX")
run=
cleanup() {
	[ -z "$run" ] || kill -9 "$run" 2>/dev/null || true
	"$chaos" reap >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "test_chaos_teardown: FAIL: $*" >&2; exit 1; }
mkdir -p "$T/vm"
: >"$T/vm/vmlinuz"
: >"$T/vm/initrd.gz"
printf '#!/bin/sh\nexec sleep 300\n' >"$T/qemu-sleeps"
printf '#!/bin/sh\nexit 3\n' >"$T/qemu-fails"
chmod +x "$T/qemu-sleeps" "$T/qemu-fails"
start() {   # start QEMU OUT: remus-chaos run in the background; sets run
	"$chaos" run --stack remusd --vm-dir "$T/vm" --qemu "$1" --remusd "$T/qemu-sleeps" --tls-psk "$T/vm/vmlinuz" --client "$client" \
		--checker "$checker" --boot-timeout 60 --out "$T/$2" >"$T/$2.log" 2>&1 &
	run=$!
}
namespaces() { ip netns list | awk '{print $1}' | grep -E "^rchaos$1-" || true; }
wait_lab() {   # wait_lab PID: its lab is up (4 namespaces, both fake QEMUs running)
	for _ in $(seq 200); do
		[ "$(namespaces "$1" | wc -l)" -eq 4 ] && [ -s "$T/$2/lab.json" ] &&
			[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["processes"]))' "$T/$2/lab.json")" -ge 3 ] &&
			return 0
		sleep 0.1
	done
	fail "$2: the lab did not come up: $(cat "$T/$2.log")"
}
lab_pids() { python3 -c 'import json,sys; print(" ".join(str(p) for p in json.load(open(sys.argv[1]))["processes"].values()))' "$1"; }
none_alive() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }

# error: the fake QEMU exits.
start "$T/qemu-fails" error
rc=0
wait "$run" || rc=$?
run=
[ "$rc" -eq 1 ] || fail "error: remus-chaos exited $rc, want 1: $(cat "$T/error.log")"
grep -q "exited" "$T/error.log" || fail "error: the reason is not printed: $(cat "$T/error.log")"
[ -z "$(namespaces "$!")" ] || fail "error: namespaces left: $(namespaces "$!")"
echo "error: exit 1, '$(grep -o 'LAB ERROR.*' "$T/error.log" | cut -c1-100)', nothing left"

# SIGTERM while the guests "boot".
start "$T/qemu-sleeps" term
pid=$run
wait_lab "$pid" term
pids=$(lab_pids "$T/term/lab.json")
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
run=
[ "$rc" -ne 0 ] || fail "SIGTERM: remus-chaos exited 0"
[ -z "$(namespaces "$pid")" ] || fail "SIGTERM: namespaces left: $(namespaces "$pid")"
# shellcheck disable=SC2086
none_alive $pids || fail "SIGTERM: lab processes left: $pids"
echo "SIGTERM: exit $rc, namespaces and processes ($pids) gone"

# SIGKILL: nothing can clean up but the next run.
start "$T/qemu-sleeps" kill
pid=$run
wait_lab "$pid" kill
pids=$(lab_pids "$T/kill/lab.json")
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
run=
[ -n "$(namespaces "$pid")" ] || fail "SIGKILL: the namespaces are gone already?"
"$chaos" reap >"$T/reap.log" 2>&1 || fail "reap failed: $(cat "$T/reap.log")"
[ -z "$(namespaces "$pid")" ] || fail "SIGKILL: reap left namespaces: $(namespaces "$pid")"
for _ in $(seq 50); do none_alive $pids && break; sleep 0.1; done
# shellcheck disable=SC2086
none_alive $pids || fail "SIGKILL: reap left processes: $pids"
echo "SIGKILL: $(grep -c removing "$T/reap.log") namespaces reaped, processes ($pids) gone"
