#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench/scale's smallest case, as a test (ctest scale-smoke, labels bench
# and engine): engine v2 on a 256 MiB guest whose dirtier fills 32 MiB and
# rewrites 4 MiB/s, 300 ms epochs, a 3 s window.  Checks that bench/scale
# prints one line with every key of its header and values that can be
# true (the engine asked for, epochs measured and committed, a real epoch
# no shorter than the interval, pauses, CPU and bytes above zero, sent at
# least the changed pages and not 10x more), never its timings against a
# target.  Needs root and /dev/fuse, as engine v2 does (skipped without).
source "$(dirname "$0")/../tests/lib/remus.sh"
require_root "engine v2's tracker mounts a FUSE filesystem"
[ -c /dev/fuse ] || skip "no /dev/fuse: engine v2's tracker cannot run here"

out=$(BENCH_CASES="v2:256:300" BENCH_SECONDS=3 BENCH_MIN_EPOCHS=4 BENCH_FILL=32 \
	"$(dirname "$0")/scale") || fail "bench/scale failed: $out"
echo "$out"
python3 - "$out" <<'EOF' || fail "bench/scale's line is incomplete or insane"
import json, sys
lines = sys.argv[1].strip().splitlines()
assert len(lines) == 1, "expected one line, got %d" % len(lines)
r = json.loads(lines[0])
keys = ("engine mem_mib interval_ms epoch_ms_real pause_ms_p50 pause_ms_p99 cpu_s_per_epoch "
        "local_bytes_per_epoch sent_bytes_per_epoch sent_vs_changed epochs abandoned "
        "changed_pages_per_epoch dirty_pages_per_epoch device_bytes_per_epoch "
        "local_vs_changed collect_ms_p50 engines guest_ok").split()
missing = [k for k in keys if r.get(k) is None]
assert not missing, "missing keys: %s" % missing
checks = {
    "engine v2": r["engine"] == "v2" and r["engines"] == ["v2"],
    "mem and interval": r["mem_mib"] == 256 and r["interval_ms"] == 300,
    "epochs": r["epochs"] >= 4 and r["abandoned"] == 0,
    "real epoch >= interval": 300 <= r["epoch_ms_real"] < 10000,
    "pauses": 0 < r["pause_ms_p50"] <= r["pause_ms_p99"] < 10000,
    "cpu": r["cpu_s_per_epoch"] > 0,
    "bytes": 0 < r["sent_bytes_per_epoch"] and 0 < r["local_bytes_per_epoch"],
    "pages": r["changed_pages_per_epoch"] > 0 and r["dirty_pages_per_epoch"] > 0,
    "sent vs changed": 0.5 < r["sent_vs_changed"] < 10,
    "guest memory check": r["guest_ok"] is True,
}
bad = [k for k, v in checks.items() if not v]
assert not bad, "insane values (%s): %s" % (", ".join(bad), lines[0])
print("scale-smoke: ok")
EOF
