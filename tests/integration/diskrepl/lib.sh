# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Helpers of the disk replication tests (sourced after engine/lib.sh, whose
# private dir $T, PID tracking, EXIT trap, start_qemu, wait_for, serial and
# free_port they use).
#
# The guest side is vm-images/guest/diskrec.c (a ring of checksummed
# records checked against the program's memory) and fswork.c (ext4 with
# fsync, checked against memory after dropping the page cache).  The host
# runs the very same static diskrec binary on raw images ($DISKREC) to
# read, forge and erase records, so what the host checks and what the guest
# checks is one piece of code.
# shellcheck source=../engine/lib.sh
source "$REMUS_SOURCE_DIR/tests/integration/engine/lib.sh"

DISKREC=$REMUS_BUILD_DIR/vm-images/guest/diskrec
[ -x "$DISKREC" ] || fail "$DISKREC is missing; build the guest: cmake --build $REMUS_BUILD_DIR --target vm-images"

# The kernel command line of a diskrec writer on /dev/vda: append_diskrec
# KEY=VAL... (added to the defaults below, later keys cannot repeat one).
append_diskrec() {
	local args="dev=/dev/vda" a
	for a in "$@"; do args+=",$a"; done
	echo "remus.run=diskrec remus.args=$args"
}

# The QEMU options of a raw image attached as /dev/vda without replication.
drive_plain() {
	echo "-drive file=$1,format=raw,if=none,id=d0,cache=none"
	echo "-device virtio-blk-pci,drive=d0"
}

# The QEMU options of disk NAME served by remusd on unix socket SOCK.  The
# same on the primary and the standby QEMU.
drive_nbd() {
	echo "-blockdev driver=nbd,node-name=$1,server.type=unix,server.path=$2,export=$1"
	echo "-device virtio-blk-pci,drive=$1"
}

# remusd_has_disk: the remusd under test takes --disk.  The failover tests
# skip (exit 77, ctest's SKIP_RETURN_CODE) only while it does not.
remusd_has_disk() {
	"$REMUSD" primary --help 2>&1 | grep -q -- '--disk NAME'
}

# Extra remusd primary options: the test guests have no NIC, so an output
# buffer has nothing to hold; say so where remusd has one.
primary_nb_opts() {
	if "$REMUSD" primary --help 2>&1 | grep -q -- '--netbuffer'; then
		echo "--netbuffer off"
	fi
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

# diskrec_seqs NAME: the seqs of the "diskrec seq=N ok" lines of guest NAME.
diskrec_seqs() {
	serial "$1" | sed -n 's/^diskrec seq=\([0-9]*\) ok$/\1/p'
}

# diskrec_last NAME: the newest seq guest NAME printed (empty if none).
diskrec_last() {
	diskrec_seqs "$1" | tail -n1
}

# diskrec_reached NAME SEQ: guest NAME printed a seq >= SEQ.
diskrec_reached() {
	local last
	last=$(diskrec_last "$1")
	[ -n "$last" ] && [ "$last" -ge "$2" ]
}

# host_last IMAGE SLOTS: the newest record on IMAGE, after checking that the
# whole ring is consistent with it (diskrec mode=verify seq=0).
host_last() {
	local out
	out=$("$DISKREC" mode=verify dev="$1" slots="$2" 2>&1) ||
		fail "the ring on $1 is inconsistent: $out"
	echo "$out" | sed -n 's/^diskrec verify last=\([0-9]*\) ok$/\1/p'
}

# check_consecutive WHAT STEP SEQ...: the seqs go up by exactly STEP.
check_consecutive() {
	local what=$1 step=$2
	shift 2
	printf '%s\n' "$@" | awk -v s="$step" 'NR > 1 && $1 != prev + s { bad = 1 } { prev = $1 } END { exit bad }' ||
		fail "$what: progress lines not consecutive (step $step): $*"
}
