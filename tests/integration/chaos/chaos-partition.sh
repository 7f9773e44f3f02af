#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   chaos-partition.sh FENCE SCENARIOS       FENCE: lab | off
#
# remus-chaos with both hosts alive through the fault (partition, stall):
# one fault of each of SCENARIOS, in that order, run and judged by
# chaos-kill-primary.sh (which documents both outcomes).  FENCE lab: the
# standby powers the old primary off before it takes over, so no
# violation; off with a partition: the checker must report the split
# brain and the report must say why a fence is needed.
exec "$(dirname "$0")/chaos-kill-primary.sh" qemu each "${2:?scenarios}" memory "${1:?fence}"
