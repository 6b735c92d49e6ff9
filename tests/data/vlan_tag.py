#!/usr/bin/env python3
"""Load a tiny tc (clsact) eBPF program that pushes or pops VLAN tags, and pin it.

Why this exists: the kernel of the recording machine is built without
CONFIG_VLAN_8021Q, so `ip link add ... type vlan` fails ("Unknown device type") and no
VLAN subinterface can be made. The kernel's own VLAN helpers for tc programs
(bpf_skb_vlan_push / bpf_skb_vlan_pop, in net/core/filter.c) do not depend on that
option, and neither does the receive path's tag parsing (skb_vlan_untag). So a
four-instruction program attached to a veth's clsact egress hook tags every frame the
namespace sends, the peer's ingress hook pops the tags again, and everything in between
(including tcpdump on either veth) sees real 802.1Q / 802.1ad frames carrying the real
curl/nginx exchange. No compiler is needed: the instructions are assembled below.

Usage:
  vlan_tag.py PIN_PATH push TPID:VID [TPID:VID...]   # tags listed outermost first
  vlan_tag.py PIN_PATH pop COUNT
then:
  tc qdisc add dev IF clsact
  tc filter add dev IF egress  bpf direct-action object-pinned PIN_PATH
PIN_PATH must be on a bpf filesystem (mount -t bpf bpf DIR).
"""

import ctypes
import os
import struct
import sys

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_PROG_TYPE_SCHED_CLS = 3
FN_SKB_VLAN_PUSH = 18
FN_SKB_VLAN_POP = 19
TC_ACT_OK = 0


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def mov64_reg(dst, src):
    return insn(0xBF, dst, src)  # BPF_ALU64 | BPF_MOV | BPF_X


def mov64_imm(dst, imm):
    return insn(0xB7, dst, imm=imm)  # BPF_ALU64 | BPF_MOV | BPF_K


def call(fn):
    return insn(0x85, imm=fn)  # BPF_JMP | BPF_CALL


def exit_():
    return insn(0x95)  # BPF_JMP | BPF_EXIT


def program(op, args):
    code = [mov64_reg(6, 1)]  # keep the skb pointer across calls (r1-r5 are clobbered)
    if op == "push":
        tags = []
        for a in args:
            tpid, vid = a.split(":")
            tags.append((int(tpid, 0), int(vid, 0)))
        # The helper makes the new tag the outermost one, so push the innermost first.
        for tpid, vid in reversed(tags):
            if tpid not in (0x8100, 0x88A8) or not 0 < vid < 4095:
                sys.exit(f"bad tag {tpid:#x}:{vid}")
            code += [
                mov64_reg(1, 6),
                # vlan_proto is __be16: the value whose little-endian bytes read 81 00.
                mov64_imm(2, struct.unpack("<H", struct.pack(">H", tpid))[0]),
                mov64_imm(3, vid),
                call(FN_SKB_VLAN_PUSH),
            ]
    elif op == "pop":
        for _ in range(int(args[0])):
            code += [mov64_reg(1, 6), call(FN_SKB_VLAN_POP)]
    else:
        sys.exit(__doc__)
    code += [mov64_imm(0, TC_ACT_OK), exit_()]
    return b"".join(code)


def bpf(cmd, attr):
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, 128)
    ret = libc.syscall(SYS_BPF, cmd, buf, 128)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    pin, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    code = program(op, args)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack(
        "<IIQQIIQII16s",
        BPF_PROG_TYPE_SCHED_CLS,
        len(code) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(license_),
        1,
        len(log),
        ctypes.addressof(log),
        0,
        0,
        b"pal_vlan_" + op.encode(),
    )
    try:
        fd = bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        sys.exit(f"BPF_PROG_LOAD failed: {e}\n{log.value.decode(errors='replace')}")
    path = ctypes.create_string_buffer(pin.encode())
    bpf(BPF_OBJ_PIN, struct.pack("<QII", ctypes.addressof(path), fd, 0))


if __name__ == "__main__":
    main()
