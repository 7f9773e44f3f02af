# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared helpers for the engine integration tests (sourced, not run).
#
# Every process a test starts is recorded with `track PID`; the EXIT trap
# SIGKILLs exactly those pids (never anything by name) and removes the
# test's private directory unless REMUS_TEST_KEEP is set.  QEMU is the
# distribution's qemu-system-x86_64 booting the project's test guest.

set -euo pipefail

: "${REMUS_BUILD_DIR:?run through ctest (REMUS_BUILD_DIR unset)}"
: "${REMUS_GUEST_KERNEL:?}" "${REMUS_GUEST_INITRD:?}"
QEMU=${REMUS_QEMU:-qemu-system-x86_64}
REMUSD=$REMUS_BUILD_DIR/daemon/remusd
ACCEL=${REMUS_ACCEL:-$(cat "$REMUS_BUILD_DIR/vm-images/accel" 2>/dev/null || echo tcg)}

T=$(mktemp -d /tmp/remus-engine-XXXXXX)
PIDS=()

track() { PIDS+=("$1"); }

cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ]; then
		echo "---- logs of the failed run ($T)"
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "== $f"
			tail -n 25 "$f" | tr -d '\r'
		done
	fi
	[ -n "${REMUS_TEST_KEEP:-}" ] || rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

now_ms() { date +%s%3N; }

# Daemons whose death ends any wait at once: `watch_daemon PID NAME LOG`.
WATCHED=()
watch_daemon() { WATCHED+=("$1:$2:$3"); }
unwatch_daemon() {
	local w keep=()
	for w in "${WATCHED[@]+"${WATCHED[@]}"}"; do
		[ "${w%%:*}" = "$1" ] || keep+=("$w")
	done
	WATCHED=("${keep[@]+"${keep[@]}"}")
}
check_daemons() {
	local w pid rest
	for w in "${WATCHED[@]+"${WATCHED[@]}"}"; do
		pid=${w%%:*} rest=${w#*:}
		kill -0 "$pid" 2>/dev/null ||
			fail "${rest%%:*} exited early: $(tail -n 3 "${rest#*:}" 2>/dev/null)"
	done
}

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 100 ms.
wait_for() {
	local timeout=$1 what=$2 deadline
	shift 2
	deadline=$(($(now_ms) + timeout * 1000))
	until "$@"; do
		check_daemons
		[ "$(now_ms)" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
		sleep 0.1
	done
}

# Lines in FILE, 0 while it does not exist.
count_lines() {
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# start_qemu NAME APPEND [EXTRA...]: guest with serial $T/NAME.serial.log,
# QMP $T/NAME.qmp; sets QEMU_PID.
start_qemu() {
	local name=$1 append=$2
	shift 2
	"$QEMU" -accel "$ACCEL" -machine pc -m 256 -smp 1 -nographic -nodefaults \
		-kernel "$REMUS_GUEST_KERNEL" -initrd "$REMUS_GUEST_INITRD" \
		-append "console=ttyS0 $append" \
		-serial "file:$T/$name.serial.log" \
		-qmp "unix:$T/$name.qmp,server=on,wait=off" "$@" \
		>"$T/$name.qemu.log" 2>&1 &
	QEMU_PID=$!
	track "$QEMU_PID"
}

serial() {
	[ -f "$T/$1.serial.log" ] || return 0
	tr -d '\r' <"$T/$1.serial.log"
}
has_serial() { serial "$1" | grep -q "$2"; }

# A TCP port nobody listens on now (the standby binds it right after).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ctl() { "$REMUSD" ctl "$@"; }

# json_get FILE_OR_TEXT KEY.PATH: prints a value from a JSON text.
json_get() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d=d[k] if isinstance(d,dict) else None
print("" if d is None else d)' "$1" "$2"
}

# check_ticks PRIMARY STANDBY INTERVAL_MS: the standby guest resumed the
# primary's tick sequence from the last checkpoint: its first tick is at
# most the primary's last + 1 (nothing from the future), at least the
# primary's last - (ticks in one epoch + 1) (not an older checkpoint), and
# its ticks are consecutive.
check_ticks() {
	local pri=$1 sby=$2 interval=$3 pri_last ticks first per_epoch
	pri_last=$(serial "$pri" | grep -o 'tick [0-9]*' | tail -1 | cut -d' ' -f2)
	ticks=$(serial "$sby" | grep -o 'tick [0-9]*' | cut -d' ' -f2)
	first=$(echo "$ticks" | head -1)
	[ -n "$first" ] || fail "the standby guest printed no tick"
	per_epoch=$(((interval + 999) / 1000))
	[ "$first" -le $((pri_last + 1)) ] ||
		fail "standby resumed at tick $first, after the primary's last tick $pri_last"
	[ "$first" -ge $((pri_last - per_epoch - 1)) ] ||
		fail "standby resumed at tick $first: older than the last checkpoint (primary reached $pri_last)"
	echo "$ticks" | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }' ||
		fail "standby ticks not consecutive: $(echo $ticks)"
	echo "tick continuity: primary last tick $pri_last, standby first tick $first, standby ticks $(echo "$ticks" | wc -l)"
}

# is_full METRICS_JSON: the epoch assumed nothing about what the standby
# holds: every ZERO record was forwarded and nearly every streamed byte
# (a page QEMU sends twice with the same content still goes once).
is_full() {
	python3 -c 'import json,sys
m=json.loads(sys.argv[1])
sys.exit(0 if m["zero_changed"] == m["zero_seen"] and m["sent_bytes"] > 0.9 * m["local_bytes"] else 1)' "$1"
}
