#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   chaos-libvirt.sh NETBUFFER FAULTS SCENARIOS [WORKLOAD [FENCE]]
#
# remus-chaos on its libvirt stack (the default of remus-chaos run): every
# hypervisor host runs its own libvirtd and remusd serve, the guest is a
# libvirt domain protected with remusctl protect, and remusd serve
# re-protects it by itself after every fault.  FENCE lab: remusd.conf's
# fence_command on both hosts (the standby powers the old primary's host
# off before it takes over) and primary_miss twice miss.  Run and judged
# by chaos-kill-primary.sh (which documents the checks, and the split
# brain a partition or a stall without a fence must show).
REMUS_CHAOS_STACK=libvirt exec "$(dirname "$0")/chaos-kill-primary.sh" \
	"${1:?netbuffer}" "${2:?faults}" "${3:?scenarios}" "${4:-memory}" "${5:-off}"
