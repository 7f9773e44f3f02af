# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The harness of every shell test (tests/integration/*/*.sh) and bench
# (bench/*).  Sourcing it:
#
#   - turns on `set -euo pipefail`;
#   - makes the test's private directory $T (kept if REMUS_TEST_KEEP is set);
#   - installs the traps: on every way out (success, `fail`, an error under
#     set -e, SIGINT, SIGTERM, SIGHUP) every process started through `track`
#     (all guests and daemons started here are) that is still this shell's
#     child is SIGKILLed by PID and reaped, the cleanup hooks run (network namespaces: netns.sh), and on
#     failure the tails of the logs in $T are printed.  Nothing is ever
#     looked up or killed by name.
#
# Binaries come from the environment, which CMake sets for every test
# (tests/CMakeLists.txt) and writes to BUILD/remus-env.sh for benches and
# hand runs: REMUSD, REMUSCTL, NBCHECK, NBD_SERVE, LINK_PROBE, DISKREC, REMUS_QEMU,
# REMUS_GUEST_KERNEL and REMUS_GUEST_INITRD.  `need VAR...` fails with what
# to do when one is missing.
#
# Guests are started by one helper, start_guest (vm-images/guest-lib.sh's
# guest_boot underneath): guest NAME has its serial console in
# $T/NAME.serial, QEMU's output in $T/NAME.qemu and QMP on $T/NAME.qmp.
# remusd is started by start_remusd: daemon NAME logs to $T/NAME.log.
#
# Exit status 77 means skipped (ctest SKIP_RETURN_CODE), with the reason
# printed: `skip`, `require_root`.

set -euo pipefail

# The tests' small Python helpers (json_get runs dozens of times a test) use
# Debian's python3 (.ci/setup installs it) when it is there: a pyenv shim
# first in PATH, as on the CI machines, costs 0.3-0.8 s per start idle and
# 2 s under load, against 0.06 s.  Functions reach $(...) and `python3 -`;
# commands run through `ip netns exec` use "$REMUS_PYTHON".
if [ -z "${REMUS_PYTHON:-}" ]; then
	REMUS_PYTHON=$(type -P python3 || true)
	[ -x /usr/bin/python3 ] && REMUS_PYTHON=/usr/bin/python3
fi
python3() { "$REMUS_PYTHON" "$@"; }

REMUS_SOURCE_DIR=${REMUS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
# shellcheck source=../../vm-images/guest-lib.sh
. "$REMUS_SOURCE_DIR/vm-images/guest-lib.sh"

# Status names printed by `remusd ctl SOCK status` and the standby's
# --report: the standby's and the primary's states.  Tests compare with
# these, so a renamed state is changed here only.
# shellcheck disable=SC2034
ST_WAITING=waiting ST_ACTIVE=active ST_FAILED=failed \
	ST_SYNCING=syncing ST_PROTECTED=protected ST_UNPROTECTED=unprotected

# Runs by hand and benches: the variables CMake wrote for the build in
# REMUS_BUILD_DIR (each only where the environment has none).
if [ -r "${REMUS_BUILD_DIR:-/nonexistent}/remus-env.sh" ]; then
	# shellcheck disable=SC1091
	. "$REMUS_BUILD_DIR/remus-env.sh"
fi

# --- the private directory, process tracking and cleanup ----------------------

# track PID...: stop these processes (SIGKILL, by PID) when the test ends.
track() { PIDS+=("$@"); }

# at_cleanup FUNC: run FUNC when the test ends, after the tracked processes
# are gone (hooks run last registered first).
at_cleanup() { CLEANUP_HOOKS=("$1" "${CLEANUP_HOOKS[@]+"${CLEANUP_HOOKS[@]}"}"); }

# _ours PID: PID is (still) a child of this shell, so a PID the test
# reaped long ago and the kernel gave to someone else is never killed.
_ours() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086 # the fields after the name, split on purpose
	set -- $stat
	[ "$2" = "$BASHPID" ]
}

_remus_cleanup() {
	local rc=$? p f
	set +e
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		! _ours "$p" || kill -9 "$p" 2>/dev/null
	done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		wait "$p" 2>/dev/null
	done
	for f in "${CLEANUP_HOOKS[@]+"${CLEANUP_HOOKS[@]}"}"; do
		"$f"
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "---- logs of the failed run ($T)"
		# (run/: the chaos lab's; its hosts' remusd logs say what a
		# failed lab step waited for.)
		for f in "$T"/*.log "$T"/*.qemu "$T"/*.serial "$T"/run/*remusd.log; do
			[ -s "$f" ] || continue
			echo "== $f"
			tail -n 25 "$f" | sed -E 's/\r//g; s/\x1b(\[[0-9;?]*[A-Za-z]|c)//g'
		done
	fi
	if [ -n "${REMUS_TEST_KEEP:-}" ]; then
		echo "$TEST_NAME: kept $T (REMUS_TEST_KEEP)"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}

# remus_begin: a new private directory $T, nothing tracked yet, the traps.
# Sourcing this file does it; a bench calls it again in a subshell per run
# so that each run cleans up after itself.
remus_begin() {
	local owner=$BASHPID
	T=$(mktemp -d "${TMPDIR:-/tmp}/remus-$TEST_NAME-$owner.XXXXXX")
	PIDS=()
	CLEANUP_HOOKS=()
	WATCHED=()
	trap _remus_cleanup EXIT
	trap 'echo "$TEST_NAME: interrupted" >&2; exit 1' INT TERM HUP
	# A long run (label slow) goes only where it was asked for.
	if [ -n "${REMUS_TEST_SLOW:-}" ] && [ -z "${REMUS_SLOW:-}" ]; then
		skip "a slow test (label slow): REMUS_SLOW=1 runs it"
	fi
}

fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}

# skip REASON: the test cannot run here (exit 77: ctest reports it skipped).
skip() {
	echo "$TEST_NAME: SKIP: $*"
	exit 77
}

# require_root WHAT: skip unless root; WHAT says what needs it.
require_root() {
	[ "$(id -u)" = 0 ] || skip "needs root ($1); run it as root, e.g. sudo -E ctest -R '^$TEST_NAME'"
}

# need VAR...: each variable is set and, if it names a path, that path
# exists: the binaries and the guest the test uses.
need() {
	local v
	for v in "$@"; do
		[ -n "${!v:-}" ] ||
			fail "$v is not set: ctest sets it; for a bench or a run by hand set REMUS_BUILD_DIR to a build directory (cmake writes BUILD/remus-env.sh) or set $v"
		case "${!v}" in
		/*) [ -e "${!v}" ] || fail "$v=${!v} does not exist: build it first (cmake --build BUILD; the guest: --target vm-images)" ;;
		esac
	done
}

# --- time, waiting, small tools ------------------------------------------------

now_ms() { date +%s%3N; }
# Wall clock in microseconds without a fork (bash 5's EPOCHREALTIME).
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# Processes whose death ends any wait at once: `watch_daemon PID NAME LOG`.
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

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 100 ms;
# fails at the timeout or as soon as a watched daemon is gone.
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

# gone PID: the process has exited (for wait_for).
gone() { ! kill -0 "$1" 2>/dev/null; }

# kill_now PID...: SIGKILL, by PID, and reap: a host that dies.
kill_now() {
	local p
	for p in "$@"; do unwatch_daemon "$p"; done
	kill -9 "$@" 2>/dev/null || true
	wait "$@" 2>/dev/null || true
}

# host_dies HOW PID...: the host of these processes dies: HOW kill is
# SIGKILL (its connections reset), HOW freeze is SIGSTOP (only silence
# tells: missed heartbeats).  Frozen processes stay tracked: the cleanup
# (or a later kill_now) SIGKILLs them.
host_dies() {
	local how=$1 p
	shift
	case "$how" in
	kill) kill_now "$@" ;;
	freeze)
		for p in "$@"; do unwatch_daemon "$p"; done
		kill -STOP "$@" ;;
	*) fail "host_dies: '$how' is not kill or freeze" ;;
	esac
}

# wait_takeover REPORT [WHO]: the standby that writes REPORT (--report)
# took over within 30 s: sets REPORT_JSON, fails if its state is not active.
wait_takeover() {
	local who=${2:-the standby}
	wait_for 30 "$who's failover report" test -s "$1"
	REPORT_JSON=$(cat "$1")
	[ "$(json_get "$REPORT_JSON" state)" = "$ST_ACTIVE" ] || fail "$who did not take over: $REPORT_JSON"
}

# sleep_into_epoch INTERVAL_MS [LO HI]: sleep a random LO..HI (default
# 0.2..0.8) of an epoch: a kill then falls inside an epoch, not on its
# boundary.
sleep_into_epoch() {
	sleep "$(python3 -c 'import random, sys; print(random.uniform(float(sys.argv[2]), float(sys.argv[3])) * int(sys.argv[1]) / 1000)' \
		"$1" "${2:-0.2}" "${3:-0.8}")"
}

# Lines in FILE, 0 while it does not exist.
count_lines() {
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# json_get JSON_TEXT KEY.PATH: prints a value ("" for null or missing;
# numbers as list indices: disks.0.state); objects and lists as JSON.
json_get() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    if isinstance(d,dict): d=d.get(k)
    elif isinstance(d,list) and k.isdigit() and int(k)<len(d): d=d[int(k)]
    else: d=None
if d is None: print("")
elif isinstance(d,bool): print("true" if d else "false")
elif isinstance(d,(dict,list)): print(json.dumps(d))
else: print(d)' "$1" "$2"
}

# A TCP port on 127.0.0.1 nobody listens on now (the caller binds it next).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# self_test FUNC GOOD_INPUT BAD_INPUT: the checker FUNC must accept GOOD
# and reject BAD (printf %b text on stdin): a checker that cannot fail
# fails the test.
self_test() {
	printf '%b' "$2" | "$1" >/dev/null 2>&1 || fail "self-test: $1 rejects a good log"
	if printf '%b' "$3" | "$1" >/dev/null 2>&1; then
		fail "self-test: $1 accepts a bad log"
	fi
}

# --- guests --------------------------------------------------------------------

# start_guest NAME APPEND [OPTION...] [-- QEMU_ARG...]: boots the test
# guest with kernel command line "console=ttyS0 APPEND" in the background;
# sets QEMU_PID (tracked).  Options:
#   --mem MB              guest RAM (default 256)
#   --incoming URI        wait for a migration stream (-incoming URI)
#   --nbd NAME=SOCKET     a virtio disk: export NAME of the NBD server on SOCKET
#   --image FILE          a virtio disk: raw FILE, cache=none
#   --tap IF,MAC          a virtio NIC on the existing tap IF (vnet_hdr)
#   --user-net FWD        a virtio NIC on QEMU's restricted user network with
#                         hostfwd FWD (tcp:127.0.0.1:PORT-:PORT)
#   --netns HOST          run QEMU in the test's namespace HOST (netns.sh)
#   --monitor FIFO        HMP on QEMU's stdin, read from FIFO (guest_hmp)
#   --vm DIR              vmlinuz and initrd.gz from DIR instead of the
#                         test guest's
start_guest() {
	local name=$1 append=$2 vm="" mem=256 netns="" stdin=/dev/null disks=0 args=()
	shift 2
	while [ $# -gt 0 ]; do
		case "$1" in
		--mem) mem=$2 ;;
		--incoming) args+=(-incoming "$2") ;;
		--nbd)
			args+=(-blockdev "driver=nbd,node-name=${2%%=*},server.type=unix,server.path=${2#*=},export=${2%%=*}"
				-device "virtio-blk-pci,drive=${2%%=*}") ;;
		--image)
			args+=(-drive "file=$2,format=raw,if=none,id=disk$disks,cache=none"
				-device "virtio-blk-pci,drive=disk$disks")
			disks=$((disks + 1)) ;;
		--tap)
			args+=(-netdev "tap,id=hn0,ifname=${2%%,*},script=no,downscript=no,vnet_hdr=on"
				-device "virtio-net-pci,netdev=hn0,mac=${2#*,}") ;;
		--user-net)
			args+=(-netdev "user,id=n0,restrict=on,hostfwd=$2" -device "virtio-net-pci,netdev=n0") ;;
		--netns) netns=$NS-$2 ;;
		--monitor)
			stdin=$2
			args+=(-monitor stdio) ;;
		--vm) vm=$2 ;;
		--) shift; args+=("$@"); break ;;
		*) fail "start_guest: unknown option '$1'" ;;
		esac
		shift 2
	done
	if [ -z "$vm" ]; then
		need REMUS_GUEST_KERNEL REMUS_GUEST_INITRD
		vm=$(dirname "$REMUS_GUEST_KERNEL")
		[ "$(dirname "$REMUS_GUEST_INITRD")" = "$vm" ] ||
			fail "REMUS_GUEST_KERNEL and REMUS_GUEST_INITRD must be in one directory (a vm-images build)"
	fi
	[ -n "${ACCEL:-}" ] || ACCEL=$(guest_accel "$vm")
	GUEST_MEM=$mem GUEST_STDIN=$stdin GUEST_NETNS=$netns \
		guest_boot "$T/$name" "$vm" "$ACCEL" "$append" \
		-qmp "unix:$T/$name.qmp,server=on,wait=off" "${args[@]+"${args[@]}"}" ||
		fail "cannot start guest $name"
	QEMU_PID=$GUEST_PID
	track "$QEMU_PID"
}

# serial NAME: guest NAME's serial console so far, clean text.
serial() { guest_serial "$T/$1"; }

# has_serial NAME ERE: the console has a line matching ERE.  (Not grep -q:
# with pipefail, the writer's SIGPIPE would turn a match into a failure.)
has_serial() { serial "$1" | grep -aE -- "$2" >/dev/null; }

# wait_serial NAME ERE TIMEOUT_S [DESCRIPTION]: wait_for a console line;
# fails at once if the guest's QEMU is gone without printing it.
wait_serial() {
	wait_for "$3" "${4:-guest $1 to print /$2/}" _serial_or_gone "$1" "$2"
}
_serial_or_gone() {
	has_serial "$1" "$2" && return 0
	kill -0 "$(cat "$T/$1.pid")" 2>/dev/null ||
		fail "the QEMU of guest $1 exited before /$2/ appeared: $(tail -n 3 "$T/$1.qemu" | tr '\n' ' ')"
	return 1
}

# qmp SOCK COMMAND [ARGUMENTS_JSON]: one QMP command on a QEMU that no one
# else is connected to; prints the "return" value as JSON, fails on "error".
qmp() {
	python3 - "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting
def cmd(name, args=None):
    m = {"execute": name}
    if args is not None:
        m["arguments"] = args
    f.write(json.dumps(m) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r:
            return r["return"]
        if "error" in r:
            sys.exit("qmp %s on %s: %s" % (name, sys.argv[1], r["error"]["desc"]))
cmd("qmp_capabilities")
print(json.dumps(cmd(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)))
EOF
}

# --- remusd --------------------------------------------------------------------

# start_remusd [--netns HOST] NAME ROLE ARG...: `remusd ROLE ARG...` in the
# background, output appended to $T/NAME.log; sets REMUSD_PID (tracked and
# watched: its death fails any wait).  A primary or standby gets the
# test's pre-shared key (--tls-psk $T/remus.psk, made on first use) unless
# ARG says --tls-psk, --tls-x509-dir or --insecure: the default, encrypted
# and authenticated, is what tests run.
start_remusd() {
	local pre=()
	if [ "$1" = --netns ]; then
		pre=(ip netns exec "$NS-$2")
		shift 2
	fi
	local name=$1
	shift
	need REMUSD
	case "$1" in
	primary|standby)
		case " $* " in
		*" --tls-psk "*|*" --tls-x509-dir "*|*" --insecure "*) ;;
		*) set -- "$@" --tls-psk "$(test_psk)" ;;
		esac ;;
	esac
	# ip netns exec execs remusd, so $! is remusd's pid.
	"${pre[@]+"${pre[@]}"}" "$REMUSD" "$@" >>"$T/$name.log" 2>&1 &
	REMUSD_PID=$!
	track "$REMUSD_PID"
	watch_daemon "$REMUSD_PID" "$name remusd" "$T/$name.log"
}

ctl() { "$REMUSD" ctl "$@"; }

# start_ramfs MNT SOCK NAME: `remusd ramfs` serving guest RAM files on MNT
# (made if missing), control socket SOCK, log $T/NAME.log; returns once
# SOCK is there, RAMFS_PID its pid (tracked).  Skips the test when the
# server cannot start here (no FUSE).  MNT is unmounted at the cleanup,
# in case a SIGKILLed server left it mounted.
RAMFS_MOUNTS=()
_unmount_ramfs() {
	local m
	for m in "${RAMFS_MOUNTS[@]+"${RAMFS_MOUNTS[@]}"}"; do
		umount -l "$m" 2>/dev/null || true
	done
}
start_ramfs() {
	local mnt=$1 sock=$2 log=$T/$3.log
	need REMUSD
	mkdir -p "$mnt"
	[ "${#RAMFS_MOUNTS[@]}" -gt 0 ] || at_cleanup _unmount_ramfs
	RAMFS_MOUNTS+=("$mnt")
	"$REMUSD" ramfs --mount "$mnt" --socket "$sock" >"$log" 2>&1 &
	RAMFS_PID=$!
	track "$RAMFS_PID"
	_ramfs_up() {
		gone "$RAMFS_PID" && skip "remusd ramfs could not start here: $(tail -1 "$log")"
		[ -S "$sock" ]
	}
	wait_for 10 "remusd ramfs's socket $sock" _ramfs_up
}

# test_psk: the test's pre-shared key file (both ends use it), made with
# remusd keygen on first use; prints its path.
test_psk() {
	[ -e "$T/remus.psk" ] || "$REMUSD" keygen "$T/remus.psk" >/dev/null ||
		fail "remusd keygen $T/remus.psk failed"
	echo "$T/remus.psk"
}

# test_pki: the test certificates (tests/support/tls_pki.c: good,
# otherca, expired, wrongname under $T/pki), made on first use; prints
# the directory.
test_pki() {
	need TLS_PKI
	if [ ! -d "$T/pki" ]; then
		mkdir "$T/pki"
		"$TLS_PKI" "$T/pki" || fail "tls_pki $T/pki failed"
	fi
	echo "$T/pki"
}

# state_of SOCK: the state in the status of the remusd on control socket SOCK.
state_of() { json_get "$(ctl "$1" status)" state; }
# in_state SOCK STATE: for wait_for.
in_state() { [ "$(state_of "$1")" = "$2" ]; }

# --- what the test guests print, and the epochs' metrics -------------------------

# ticks NAME: the numbers of guest NAME's "tick N" lines.
ticks() { serial "$1" | grep -o 'tick [0-9]*' | cut -d' ' -f2 || true; }

# check_ticks PRIMARY STANDBY INTERVAL_MS: the standby guest resumed the
# primary's tick sequence from the last checkpoint: its first tick is at
# most the primary's last + 1 (nothing from the future), at least the
# primary's last - (ticks in one epoch + 1) (not an older checkpoint), and
# its ticks are consecutive.
check_ticks() {
	local pri=$1 sby=$2 interval=$3 pri_last sby_ticks first per_epoch
	pri_last=$(ticks "$pri" | tail -1)
	sby_ticks=$(ticks "$sby")
	first=$(echo "$sby_ticks" | head -1)
	[ -n "$pri_last" ] || fail "the primary guest printed no tick: nothing to compare with"
	[ -n "$first" ] || fail "the standby guest printed no tick"
	per_epoch=$(((interval + 999) / 1000))
	[ "$first" -le $((pri_last + 1)) ] ||
		fail "standby resumed at tick $first, after the primary's last tick $pri_last"
	[ "$first" -ge $((pri_last - per_epoch - 1)) ] ||
		fail "standby resumed at tick $first: older than the last checkpoint (primary reached $pri_last)"
	echo "$sby_ticks" | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }' ||
		fail "standby ticks not consecutive: $(echo $sby_ticks)"
	echo "tick continuity: primary last tick $pri_last, standby first tick $first, standby ticks $(echo "$sby_ticks" | wc -l)"
}

# check_dirty_continuity PRIMARY STANDBY: the dirtier's sequence goes on
# in the standby guest, every sum it prints for a seq equals the primary's for that
# seq (content is a pure function of seq), and the guest's own full-memory
# check finds no MISMATCH.
check_dirty_continuity() {
	local pri=$1 sby=$2 pri_seqs sby_seqs pri_last sby_first line s p
	! has_serial "$sby" MISMATCH || fail "the standby guest found torn memory: $(serial "$sby" | grep MISMATCH)"
	pri_seqs=$(serial "$pri" | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
	sby_seqs=$(serial "$sby" | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
	[ -n "$sby_seqs" ] || fail "the standby guest printed no checksum"
	[ -n "$pri_seqs" ] || fail "the primary guest printed no checksum: nothing to compare with"
	pri_last=$(echo "$pri_seqs" | tail -1 | sed 's/.*seq=\([0-9]*\).*/\1/')
	sby_first=$(echo "$sby_seqs" | head -1 | sed 's/.*seq=\([0-9]*\).*/\1/')
	[ "$sby_first" -le $((pri_last + 1)) ] ||
		fail "standby resumed at seq $sby_first, after the primary's last seq $pri_last"
	# Same seq, same sum: the standby's memory is the primary's at that point.
	while read -r line; do
		s=$(echo "$line" | sed 's/.*seq=\([0-9]*\).*/\1/')
		p=$(echo "$pri_seqs" | grep "seq=$s " || true)
		[ -z "$p" ] || [ "$p" = "$line" ] || fail "seq $s: primary '$p' vs standby '$line'"
	done <<<"$sby_seqs"
	echo "memory continuity: primary last seq $pri_last, standby first seq $sby_first, no MISMATCH"
}

# check_dirty_lines FIRST MIN MAX STARTS < serial: the dirtier's checksum
# lines "dirty seq=N sum=<16 hex digits>" are well-formed, number FIRST,
# FIRST+1, ... with no gap, at least MIN and (MAX not "") at most MAX of
# them, none is a MISMATCH, and there are exactly STARTS "dirty start"
# lines.  Prints what is wrong.
check_dirty_lines() {
	# No {16}: mawk, Debian's default awk, has no interval expressions.
	awk -v first="$1" -v min="$2" -v max="$3" -v starts="$4" '
		BEGIN { n = first; re = "^dirty seq=[0-9]+ sum="; for (i = 0; i < 16; i++) re = re "[0-9a-f]"; re = re "$" }
		/^dirty start / { start++; next }
		/MISMATCH/ { print; exit 1 }
		/^dirty / {
			if ($0 !~ re) { print "malformed: " $0; exit 1 }
			split($2, s, "=")
			if (s[2] != n) { print "seq " s[2] " where " n " was expected"; exit 1 }
			n++
		}
		END {
			if (n - first < min || (max != "" && n - first > max) || start + 0 != starts) {
				print "start lines=" start + 0 " checksum lines=" n - first; exit 1
			}
		}'
}

# is_full METRICS_JSON: the epoch assumed nothing about what the standby
# holds: every ZERO record was forwarded and most streamed bytes (a page
# QEMU sends twice with the same content still goes once: a loaded CI run
# sent 0.87 of a full epoch's local bytes, where an incremental epoch of
# the same guest sends under 0.1).
is_full() {
	python3 -c 'import json,sys
m=json.loads(sys.argv[1])
sys.exit(0 if m["zero_changed"] == m["zero_seen"] and m["sent_bytes"] > 0.5 * m["local_bytes"] else 1)' "$1"
}

# pause_summary METRICS_FILE: "pause ms p50 .. max .. over N epochs".
pause_summary() {
	python3 -c 'import json,statistics,sys
p=[json.loads(l)["pause_ms"] for l in open(sys.argv[1]) if l.strip()]
print("pause ms p50 %.1f max %.1f over %d epochs" % (statistics.median(p), max(p), len(p)))' "$1"
}

remus_begin
