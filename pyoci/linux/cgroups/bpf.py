"""The cgroup v2 device filter: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
built here from the device rules, loaded with the bpf() system call and
attached to the container's cgroup (BPF_CGROUP_DEVICE).

The kernel runs the program on every device access with a context of
three u32: access_type = (access << 16) | type, major, minor. type:
BPF_DEVCG_DEV_BLOCK 1, BPF_DEVCG_DEV_CHAR 2; access: MKNOD 1, READ 2,
WRITE 4. It returns 1 to allow, 0 to deny.

Rules keep cgroup v1's meaning: a later rule overrides an earlier one, so
the program tests them last to first and the first that matches decides;
no match denies. The attachment lives as long as the cgroup: removing the
cgroup frees it, so nothing else has to be cleaned up.
"""
import os
import struct

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
SYS_bpf = 321   # x86_64

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# instruction classes and operations (linux/bpf_common.h, linux/bpf.h)
LDX_W = 0x61                    # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54              # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74              # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xb4              # BPF_ALU | BPF_MOV | BPF_K
ALU32_MOV_X = 0xbc              # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55                    # BPF_JMP | BPF_JNE | BPF_K
EXIT = 0x95                     # BPF_JMP | BPF_EXIT


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(acc):
    return (ACC_READ if "r" in acc else 0) | (ACC_WRITE if "w" in acc else 0) | (ACC_MKNOD if "m" in acc else 0)


def program(rules):
    """Bytes of the program for rules [(allow, type, major, minor, access, ...)]."""
    code = [
        insn(LDX_W, 2, 1, 0),              # r2 = ctx->access_type
        insn(ALU32_AND_K, 2, imm=0xFFFF),  # r2 = type
        insn(LDX_W, 3, 1, 0),
        insn(ALU32_RSH_K, 3, imm=16),      # r3 = access
        insn(LDX_W, 4, 1, 4),              # r4 = major
        insn(LDX_W, 5, 1, 8),              # r5 = minor
    ]
    for rule in reversed(rules):
        allow, t, major, minor, acc = rule[:5]
        block = []
        # each test jumps past the rest of this block when it does not match
        tests = []
        if t in ("c", "b"):
            tests.append([insn(JNE_K, 2, imm=DEV_CHAR if t == "c" else DEV_BLOCK)])
        bits = _access_bits(acc)
        if bits != 7:
            # match only when the access asked for is within the rule's
            tests.append([insn(ALU32_MOV_X, 1, 3), insn(ALU32_AND_K, 1, imm=~bits & 7),
                          insn(JNE_K, 1, imm=0)])
        if major is not None:
            tests.append([insn(JNE_K, 4, imm=major)])
        if minor is not None:
            tests.append([insn(JNE_K, 5, imm=minor)])
        tail = [insn(ALU32_MOV_K, 0, imm=1 if allow else 0), insn(EXIT)]
        n = sum(len(x) for x in tests) + len(tail)
        pos = 0
        for group in tests:
            for i, ins in enumerate(group):
                pos += 1
                if i == len(group) - 1:
                    # patch the jump offset: skip to the end of the block
                    c, regs, _, imm = struct.unpack("<BBhi", ins)
                    ins = struct.pack("<BBhi", c, regs, n - pos, imm)
                block.append(ins)
        block += tail
        code += block
        if not tests:
            # matches every access: earlier rules and the default can never
            # run (and the verifier refuses unreachable instructions)
            return b"".join(code)
    code += [insn(ALU32_MOV_K, 0, imm=0), insn(EXIT)]
    return b"".join(code)


_libc = None


def _bpf(cmd, attr):
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(attr, len(attr))
    r = _libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_long(cmd), buf, ctypes.c_long(len(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf.raw


def load(prog, log=False):
    import ctypes

    insns = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"Apache")
    logbuf = ctypes.create_string_buffer(65536) if log else None
    attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(prog) // 8,
                       ctypes.addressof(insns), ctypes.addressof(lic),
                       1 if log else 0, 65536 if log else 0, ctypes.addressof(logbuf) if log else 0,
                       0, 0, b"pyoci_devices")
    attr += b"\0" * (128 - len(attr))
    try:
        fd, _ = _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        if log and logbuf is not None:
            e.verifier_log = logbuf.value.decode(errors="replace")
        raise
    return fd


def attach(cgroup_dir, prog_fd, flags=BPF_F_ALLOW_MULTI):
    cfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = struct.pack("<IIIII", cfd, prog_fd, BPF_CGROUP_DEVICE, flags, 0)
        _bpf(BPF_PROG_ATTACH, attr + b"\0" * (64 - len(attr)))
    finally:
        os.close(cfd)


def query(cgroup_dir):
    """Ids of the device programs attached to the cgroup itself."""
    import ctypes

    ids = ctypes.create_string_buffer(4 * 64)
    cfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # target_fd, attach_type, query_flags, attach_flags, prog_ids ptr, prog_cnt
        attr = struct.pack("<IIIIQI", cfd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)
        _, out = _bpf(BPF_PROG_QUERY, attr + b"\0" * (64 - len(attr)))
    finally:
        os.close(cfd)
    cnt = struct.unpack_from("<I", out, 24)[0]
    return list(struct.unpack_from("<%dI" % cnt, ids.raw))


def attach_device_filter(cgroup_dir, rules):
    fd = load(program(rules))
    try:
        attach(cgroup_dir, fd)
    finally:
        os.close(fd)
