# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shell helpers to boot the test guest under QEMU, for vm-images/demo,
# vm-images/accel-probe and the tests (tests/lib/remus.sh's start_guest
# boots every test guest through guest_boot).  Source it from
# a bash script running with `set -euo pipefail`:
#
#   . "$REMUS_SOURCE_DIR/vm-images/guest-lib.sh"
#   dir=$(mktemp -d); trap 'guest_stop_all; rm -rf "$dir"' EXIT
#   guest_boot "$dir/g" "$build/vm-images" tcg "remus.run=tick"
#   guest_wait "$dir/g" 'GUEST-UP' 60 || exit 1
#
# A guest is named by a path prefix P: its serial console goes to P.serial,
# QEMU's own output to P.qemu, its PID to P.pid.  Every guest started here is
# remembered in GUEST_PIDS and guest_stop_all stops exactly those PIDs
# (SIGTERM, then SIGKILL after 5 s), never anything found by name, so a
# trap on EXIT cleans up on every path.  The accelerator flags are the ones
# the project uses everywhere: `-accel tcg -machine pc -m 256 -smp 1`, with
# -accel kvm instead when accel-probe found KVM working.

GUEST_PIDS=()

# guest_accel BUILD_VM_DIR: echo kvm or tcg: $REMUS_ACCEL if set, else the
# word cached by accel-probe in BUILD_VM_DIR/accel, else tcg.
guest_accel() {
	local a=${REMUS_ACCEL:-}
	if [ -z "$a" ] && [ -r "$1/accel" ]; then
		read -r a <"$1/accel"
	fi
	case "${a:-tcg}" in
	kvm | tcg) echo "${a:-tcg}" ;;
	*)
		echo "guest-lib: accelerator '$a' (REMUS_ACCEL or $1/accel) is not kvm or tcg" >&2
		return 1
		;;
	esac
}

# guest_boot P VM_DIR ACCEL APPEND [QEMU_ARG...]: start QEMU in the
# background with VM_DIR's vmlinuz and initrd.gz, kernel command line
# "console=ttyS0 APPEND", extra QEMU arguments after.  Sets GUEST_PID.
# Memory is $GUEST_MEM MiB (default 256).  QEMU's stdin is $GUEST_STDIN
# (default /dev/null): a FIFO there drives "-monitor stdio" (guest_hmp).
# With $GUEST_NETNS set, QEMU runs in that network namespace (ip netns
# exec execs it: GUEST_PID is still QEMU's).
guest_boot() {
	local p=$1 vm=$2 accel=$3 append=$4
	shift 4
	local f run=("${REMUS_QEMU:-qemu-system-x86_64}")
	[ -z "${GUEST_NETNS:-}" ] || run=(ip netns exec "$GUEST_NETNS" "${run[@]}")
	for f in "$vm/vmlinuz" "$vm/initrd.gz"; do
		if [ ! -r "$f" ]; then
			echo "guest-lib: $f is missing; build it with: cmake --build <build> --target vm-images" >&2
			return 1
		fi
	done
	local args=(-accel "$accel" -machine pc -m "${GUEST_MEM:-256}" -smp 1)
	rm -f "$p.serial" "$p.qemu" "$p.pid"
	"${run[@]}" "${args[@]}" \
		-nographic -nodefaults -no-reboot \
		-kernel "$vm/vmlinuz" -initrd "$vm/initrd.gz" \
		-append "console=ttyS0 $append" \
		-serial "file:$p.serial" "$@" \
		<"${GUEST_STDIN:-/dev/null}" >"$p.qemu" 2>&1 &
	GUEST_PID=$!
	GUEST_PIDS+=("$GUEST_PID")
	echo "$GUEST_PID" >"$p.pid"
}

# guest_hmp FD COMMAND...: send one HMP command line to the monitor whose
# stdin FIFO the caller holds open on file descriptor FD (`exec 5<>fifo`);
# replies go to P.qemu.
guest_hmp() {
	local fd=$1
	shift
	printf '%s\n' "$*" >&"$fd"
}

# guest_wait P ERE TIMEOUT_S [PID]: wait until P.serial has a line matching
# the extended regex ERE.  Returns 0 when it does; 1 after TIMEOUT_S seconds
# or as soon as QEMU (PID, default the last started) has exited, with the
# reason on stderr.
guest_wait() {
	_guest_wait_in guest_serial "$@"
}

# guest_wait_qemu P ERE TIMEOUT_S [PID]: the same on QEMU's own output
# (P.qemu: monitor replies, QEMU's errors).
guest_wait_qemu() {
	_guest_wait_in _guest_qemu_out "$@"
}

_guest_qemu_out() {
	tr -d '\r' <"$1.qemu" 2>/dev/null || true
}

_guest_wait_in() {
	local show=$1 p=$2 re=$3 timeout=$4 pid=${5:-${GUEST_PID:-}} end
	end=$((SECONDS + timeout))
	while :; do
		# Not grep -q: it exits at the first match, and with pipefail the
		# writer's SIGPIPE would turn a match into a failure.
		if "$show" "$p" | grep -aE -- "$re" >/dev/null; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			echo "guest-lib: QEMU (pid $pid) exited before /$re/ appeared (guest $p); QEMU said: $(tr '\n' ' ' <"$p.qemu" 2>/dev/null)" >&2
			return 1
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			echo "guest-lib: /$re/ did not appear within ${timeout}s (guest $p)" >&2
			return 1
		fi
		sleep 0.2
	done
}

# guest_serial P: the serial log so far, without carriage returns and
# without the terminal escape sequences firmware and kernel emit.
guest_serial() {
	sed -E 's/\r//g; s/\x1b(\[[0-9;?]*[A-Za-z]|c)//g' "$1.serial" 2>/dev/null || true
}

# guest_stop PID: SIGTERM, wait up to 5 s, then SIGKILL.  No-op if gone.
guest_stop() {
	local pid=$1 _
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# guest_stop_all: stop every guest this shell started.
guest_stop_all() {
	local pid
	for pid in "${GUEST_PIDS[@]}"; do guest_stop "$pid"; done
	GUEST_PIDS=()
}
