#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# diskrepl's NBD server against QEMU's own NBD client, no guest booted.
#
# nbd_serve serves two raw files over a unix socket.  QEMU's tools
# (qemu-img info/compare/convert, qemu-io by URI and with the -blockdev
# options QEMU is given, QEMU itself with -M none) write patterns, FUA
# writes, zeroes with and without NO_HOLE, discards, bursts of aio
# writes and flushes, and read them back with pattern checks.  The same
# edits are made to a local copy with dd, independently of QEMU, and the
# served file must equal it byte for byte.  Also: an unknown export is
# refused with the server's message, two clients are served at once, the
# command flags reached the ops (nbd_serve counts them), and no protocol
# error was logged.
#
# Every process started is tracked and killed by PID on exit.
source "$(dirname "$0")/../../lib/remus.sh"
need NBD_SERVE REMUS_QEMU
SERVER=

step() { echo "== $*"; }

SOCK=$T/nbd.sock
URI="nbd+unix:///disk0?socket=$SOCK"
MiB=$((1 << 20))

# put FILE OFFSET LENGTH BYTE: what qemu-io's write -P BYTE does, with dd.
put() {
	head -c "$3" /dev/zero | tr '\0' "\\$(printf %03o "$4")" |
		dd of="$1" bs=64k seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# io ARGS...: qemu-io in writeback mode (so that only write -f asks for
# FUA), failing on any failed command or pattern mismatch.
io() {
	local out
	if ! out=$(qemu-io -t writeback "$@" 2>&1) || grep -q -i 'fail' <<<"$out"; then
		echo "$out" >&2
		fail "qemu-io $*"
	fi
}

start_server() {
	"$NBD_SERVE" -d "interop disk" "$SOCK" disk0="$T/served.raw" scratch="$T/scratch.raw" \
		>"$T/serve.out" 2>>"$T/serve.log" &
	SERVER=$!
	track "$SERVER"
	local i
	for i in $(seq 100); do
		[ -S "$SOCK" ] && return 0
		kill -0 "$SERVER" 2>/dev/null || fail "nbd_serve exited: $(tail -n 3 "$T/serve.log")"
		sleep 0.05
	done
	fail "nbd_serve did not listen on $SOCK within 5 s"
}

stop_server() {
	kill -TERM "$SERVER"
	wait "$SERVER" || fail "nbd_serve exited with status $? after SIGTERM"
	[ ! -e "$SOCK" ] || fail "nbd_serve left its socket $SOCK behind"
}

# Two 64 MiB images with the same random first 8 MiB: one served, one the
# expectation; a 16 MiB source with data and holes; a scratch export full
# of garbage that a convert must overwrite entirely.
head -c $((8 * MiB)) /dev/urandom >"$T/seed"
for f in served expected; do
	cp "$T/seed" "$T/$f.raw"
	truncate -s $((64 * MiB)) "$T/$f.raw"
done
truncate -s $((16 * MiB)) "$T/src.raw"
head -c $((3 * MiB)) /dev/urandom | dd of="$T/src.raw" bs=64k seek=$((MiB + 4097)) \
	oflag=seek_bytes conv=notrunc status=none
put "$T/src.raw" $((10 * MiB)) 12345 0x77
head -c $((16 * MiB)) /dev/urandom >"$T/scratch.raw"

start_server

step "qemu-img info sees the export's size"
info=$(qemu-img info "$URI")
grep -q 'virtual size: 64 MiB (67108864 bytes)' <<<"$info" || fail "qemu-img info: $info"

step "patterns, FUA, zeroes, discard, unaligned writes, flush"
io -f raw \
	-c "write -P 0xab 0 1M" \
	-c "write -f -P 0xcd 1M 64k" \
	-c "write -P 0x11 4097 1000" \
	-c "write -z 2M 256k" \
	-c "write -z -u 3M 256k" \
	-c "discard 4M 1M" \
	-c "write -P 0x5e 67108863 1" \
	-c "flush" \
	-c "read -P 0xab 0 4097" \
	-c "read -P 0x11 4097 1000" \
	-c "read -P 0xab 5097 1043479" \
	-c "read -P 0xcd 1M 64k" \
	-c "read -P 0 2M 256k" \
	-c "read -P 0 3M 256k" \
	-c "read -P 0 4M 1M" \
	-c "read -P 0x5e 67108863 1" \
	"$URI"
put "$T/expected.raw" 0 $MiB 0xab
put "$T/expected.raw" $MiB 65536 0xcd
put "$T/expected.raw" 4097 1000 0x11
put "$T/expected.raw" $((2 * MiB)) $((256 << 10)) 0
put "$T/expected.raw" $((3 * MiB)) $((256 << 10)) 0
put "$T/expected.raw" $((4 * MiB)) $MiB 0
put "$T/expected.raw" $((64 * MiB - 1)) 1 0x5e

step "bursts of aio writes, through the -blockdev options QEMU uses"
cmds=()
for i in $(seq 0 31); do
	cmds+=(-c "aio_write -P $((0x20 + i)) $((5 * MiB + i * 40000)) 40000")
	put "$T/expected.raw" $((5 * MiB + i * 40000)) 40000 $((0x20 + i))
done
cmds+=(-c "aio_write -f -P 0x99 $((7 * MiB + 12)) 300000" -c "aio_flush")
put "$T/expected.raw" $((7 * MiB + 12)) 300000 0x99
for i in 0 17 31; do
	cmds+=(-c "read -P $((0x20 + i)) $((5 * MiB + i * 40000)) 40000")
done
io "${cmds[@]}" -c flush --image-opts \
	"driver=nbd,server.type=unix,server.path=$SOCK,export=disk0"

step "an unknown export is refused with the server's reason"
if out=$(qemu-io -f raw -c "read 0 512" "nbd+unix:///nope?socket=$SOCK" 2>&1); then
	fail "qemu-io opened an export that does not exist"
fi
grep -q "export 'nope' is not served here" <<<"$out" || fail "unexpected refusal: $out"
qemu-img info "nbd+unix:///nope?socket=$SOCK" >/dev/null 2>&1 &&
	fail "qemu-img info opened an export that does not exist"

step "two clients at once"
qemu-io -t writeback -f raw -c "write -P 0x41 8M 1M" -c "sleep 3000" -c "read -P 0x41 8M 1M" \
	"$URI" >"$T/a.out" 2>&1 &
A=$!
track "$A"
sleep 0.5
io -f raw -c "write -P 0x42 9M 1M" -c "read -P 0x42 9M 1M" -c "read -P 0x41 8M 1M" "$URI"
kill -0 "$A" 2>/dev/null || fail "the first client finished before the second one ran; raise its sleep"
wait "$A" || fail "first client: $(cat "$T/a.out")"
! grep -qi fail "$T/a.out" || fail "first client: $(cat "$T/a.out")"
put "$T/expected.raw" $((8 * MiB)) $MiB 0x41
put "$T/expected.raw" $((9 * MiB)) $MiB 0x42

step "qemu-img compare and convert"
qemu-img compare -f raw -F raw "$T/expected.raw" "$URI" >/dev/null ||
	fail "qemu-img compare: the served export differs from the expected image"
qemu-img convert -f raw -O raw "$URI" "$T/converted.raw"
cmp "$T/converted.raw" "$T/expected.raw" || fail "qemu-img convert from the server differs"
qemu-img convert -n -f raw -O raw "$T/src.raw" "nbd+unix:///scratch?socket=$SOCK"

step "QEMU itself opens the export with -blockdev"
out=$(echo quit | timeout 30 "$REMUS_QEMU" -M none -nodefaults -display none -monitor stdio \
	-blockdev "driver=nbd,node-name=d0,server.type=unix,server.path=$SOCK,export=disk0" 2>&1) ||
	fail "QEMU with -blockdev nbd: $out"

stop_server

step "the served files are what was written, byte for byte"
cmp "$T/served.raw" "$T/expected.raw" || fail "served image differs from the expected one"
cmp "$T/scratch.raw" "$T/src.raw" || fail "convert into the server left a different image"

step "command flags reached the ops; no protocol errors"
cat "$T/serve.out"
stats=$(grep '^stats ' "$T/serve.out") || fail "nbd_serve printed no stats"
disk0=$(grep '^image disk0 ' "$T/serve.out") || fail "nbd_serve printed no image line"
grep -q ' protocol_errors=0' <<<"$stats" || fail "protocol errors: $stats"
# Two writes asked for FUA (write -f, aio_write -f); nothing else did.
grep -q ' fua=2 ' <<<"$disk0" || fail "FUA did not reach the ops exactly twice: $disk0"
# write -z keeps blocks (NO_HOLE); write -z -u may punch.
grep -q ' zero_nohole=1 ' <<<"$disk0" || fail "NO_HOLE: $disk0"
grep -q ' zero_hole=1 ' <<<"$disk0" || fail "write -z -u: $disk0"
grep -q ' trims=1 ' <<<"$disk0" || fail "discard: $disk0"
clients=$(sed -n 's/.* clients=\([0-9]*\).*/\1/p' <<<"$stats")
[ "$clients" -ge 10 ] || fail "expected at least 10 connections, got $clients"
echo "PASS: $stats"
