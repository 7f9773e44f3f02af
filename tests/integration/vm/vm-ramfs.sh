#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-ramfs: a plain QEMU (no libvirt) whose RAM is a file on `remusd
# ramfs`, made as libvirt would have it made (MNT/1-x/, then QEMU's
# -object memory-backend-file,id=pc.ram,mem-path=MNT/1-x/pc.ram,share=on).
# The test guest boots on it and its dirtier writes 4 MiB/s; a RAMFS
# tracker (ramfs_probe) attaches by path while it runs and must see pages
# written; after QMP stop and one more collect, the tracker's copy must
# equal QEMU's pmemsave in every page but the VGA window (0xa0000-0xbffff,
# where pmemsave reads device memory, not RAM).  Then the server must
# refuse SIGTERM while the file exists, and stop cleanly (exit 0,
# unmounted) once QEMU has quit and the tree is removed.
#
# Needs root and /dev/fuse; skipped, saying so, without them.
source "$(dirname "$0")/../../lib/remus.sh"

need REMUSD RAMFS_PROBE
require_root "remusd ramfs mounts a FUSE filesystem"
[ -c /dev/fuse ] || skip "no /dev/fuse: remusd ramfs cannot run here"
mem=256
mnt=$T/ram
sock=$T/ramfs.sock
start_ramfs "$mnt" "$sock" ramfs
ramfs_pid=$RAMFS_PID

mkdir "$mnt/1-x" # as libvirt does; QEMU creates pc.ram in it
start_guest g "quiet remus.run=dirty remus.args=mb=32,mbps=4,seed=3" --mem "$mem" -- \
	-object "memory-backend-file,id=pc.ram,size=${mem}M,mem-path=$mnt/1-x/pc.ram,share=on" \
	-machine memory-backend=pc.ram
wait_serial g '^GUEST-UP$' 120 "the GUEST-UP line"
wait_serial g '^dirty seq=3 ' 60 "the dirtier's 3rd line"

coproc PROBE { "$RAMFS_PROBE" "$mnt/1-x/pc.ram" "$sock" "$T/copy.bin" 2>"$T/probe.err"; }
probe_pid=$PROBE_PID
track "$probe_pid"
# probe [LINE]: send LINE (none: EOF), its answer in $answer.  Not in
# $(...): a subshell does not have the coprocess's fds.
probe() {
	if [ $# -gt 0 ]; then echo "$1" >&"${PROBE[1]}"; else exec {PROBE[1]}>&-; fi
	read -r -t 60 answer <&"${PROBE[0]}" || fail "ramfs_probe said nothing: $(cat "$T/probe.err")"
}
read -r -t 30 attached <&"${PROBE[0]}" || fail "ramfs_probe did not attach: $(cat "$T/probe.err")"
[ "$attached" = "attached $((mem * 256))" ] || fail "ramfs_probe: '$attached'"
sleep 1
probe collect
running=${answer#collected }
[ "$running" -gt 0 ] || fail "no page written in 1 s of a running guest"
sleep 1
qmp "$T/g.qmp" stop >/dev/null
probe collect
stopped=${answer#collected }
probe
[ "$answer" = saved ] || fail "ramfs_probe: '$answer': $(cat "$T/probe.err")"
wait "$probe_pid" || fail "ramfs_probe failed: $(cat "$T/probe.err")"
qmp "$T/g.qmp" pmemsave "{\"val\": 0, \"size\": $((mem << 20)), \"filename\": \"$T/pmem.bin\"}" >/dev/null
cmp_out=$(python3 - "$T/copy.bin" "$T/pmem.bin" <<'PY'
import sys
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
assert len(a) == len(b), (len(a), len(b))
bad = vga = 0
for off in range(0, len(a), 4096):
    if a[off:off + 4096] != b[off:off + 4096]:
        if 0xa0000 <= off < 0xc0000:
            vga += 1
        else:
            bad += 1
nonzero = sum(1 for off in range(0, len(a), 4096) if a[off:off + 4096].count(0) != 4096)
print(bad, vga, nonzero)
PY
) || fail "cannot compare the copy with pmemsave"
read -r bad vga nonzero <<<"$cmp_out"
echo "$TEST_NAME: $running pages in 1 s running, $stopped in the collect after stop;" \
	"copy vs pmemsave: $bad pages differ ($vga in the VGA window), $nonzero non-zero pages"
[ "$bad" -eq 0 ] || fail "the tracker's copy differs from QEMU's memory in $bad pages"
[ "$nonzero" -gt 100 ] || fail "only $nonzero non-zero pages: the guest's RAM is not in the copy"

# Lifetime: not while the guest's file exists; cleanly once it is gone.
kill -TERM "$ramfs_pid"
sleep 0.5
gone "$ramfs_pid" && fail "remusd ramfs stopped on SIGTERM while a guest's RAM was on it"
grep -q "not stopping: 1 guest RAM files" "$T/ramfs.log" || fail "no refusal logged: $(tail -2 "$T/ramfs.log")"
qmp "$T/g.qmp" quit >/dev/null || true
wait_for 30 "QEMU to quit" gone "$QEMU_PID"
rm -r "${mnt:?}/1-x"
kill -TERM "$ramfs_pid"
wait_for 10 "remusd ramfs to stop" gone "$ramfs_pid"
wait "$ramfs_pid" || fail "remusd ramfs exited $? after SIGTERM with no file left"
! grep -q " $mnt " /proc/self/mounts || fail "$mnt is still mounted"
echo "$TEST_NAME: PASS"
