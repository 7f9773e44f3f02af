# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Network namespaces of one test (sourced after remus.sh).  They are named
# "$NS-HOST" with NS=remus<pid of the test's shell>, so parallel runs never
# meet, and are deleted on every way out of the test (a remus.sh cleanup
# hook), after every process still inside them is SIGKILLed by PID: those
# are the test's own (children of tracked processes).  A run killed with
# SIGKILL cannot clean up; the next run reaps the namespaces whose owner pid
# is gone (netns_reap_stale), killing only processes inside them.
#
# Needs root: sourcing this file skips the test (exit 77) otherwise.

require_root "network namespaces"
NS=remus$$
NAMESPACES=()

# netns_add HOST...: new namespaces $NS-HOST, loopback up, no IPv6 (no DAD
# or router solicitations in the logs and links).
netns_add() {
	local h
	[ ${#NAMESPACES[@]} -gt 0 ] || { netns_reap_stale; at_cleanup _netns_cleanup; }
	for h in "$@"; do
		ip netns add "$NS-$h"
		NAMESPACES+=("$NS-$h")
		on "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$NS-$h" link set lo up
	done
}

# on HOST CMD...: runs CMD in namespace $NS-HOST.  Not for background
# processes: `on ... &` forks a subshell whose pid is not the command's;
# those use `ip netns exec` (which execs) directly, as start_guest and
# start_remusd --netns do.
on() {
	local h=$1
	shift
	ip netns exec "$NS-$h" "$@"
}

_netns_kill_inside() {
	local p
	for p in $(ip netns pids "$1" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null || true
	done
	ip netns del "$1" 2>/dev/null || true
}

_netns_cleanup() {
	local n
	for n in "${NAMESPACES[@]+"${NAMESPACES[@]}"}"; do
		_netns_kill_inside "$n"
	done
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Namespaces and private directories of earlier runs whose shell is gone
# (killed by SIGKILL, so its trap never ran): the processes inside those
# namespaces are that run's QEMUs and daemons.
netns_reap_stale() {
	local n owner
	for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^remus[0-9]+-' || true); do
		owner=${n#remus}
		owner=${owner%%-*}
		alive "$owner" && continue
		echo "removing namespace $n of a dead run (pid $owner)" >&2
		_netns_kill_inside "$n"
		rm -rf "${TMPDIR:-/tmp}"/remus-*-"$owner".??????
	done
}
