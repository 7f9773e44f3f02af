# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the disk replication tests share beyond tests/lib/remus.sh (sourced
# after it): the guest programs that check a disk and the host's view of
# what they wrote.
#
# The guest side is vm-images/guest/diskrec.c (a ring of checksummed
# records checked against the program's memory) and fswork.c (ext4 with
# fsync, checked against memory after dropping the page cache).  The host
# runs the very same static diskrec binary on raw images ($DISKREC) to
# read, forge and erase records, so what the host checks and what the guest
# checks is one piece of code.

need DISKREC

# The kernel command line of a diskrec writer on /dev/vda: append_diskrec
# KEY=VAL... (added to the defaults below, later keys cannot repeat one).
append_diskrec() {
	local args="dev=/dev/vda" a
	for a in "$@"; do args+=",$a"; done
	echo "remus.run=diskrec remus.args=$args"
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

# no_violation NAME: guest NAME's checker found nothing wrong.
no_violation() {
	if has_serial "$1" VIOLATION; then
		fail "guest $1: the disk does not match the guest's memory: $(serial "$1" | grep VIOLATION | head -3)"
	fi
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

# next_epoch METRICS_FILE: returns right after the next line is appended
# (an epoch committed): a kill timed from there falls inside the epoch
# that follows.
next_epoch() {
	local n
	n=$(count_lines "$1")
	until [ "$(count_lines "$1")" -gt "$n" ]; do check_daemons; sleep 0.02; done
}
