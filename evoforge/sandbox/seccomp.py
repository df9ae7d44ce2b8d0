"""The sandbox's seccomp filter: a classic-BPF program built here, in pure Python.

bubblewrap loads it (``--seccomp FD``) just before it starts the runner, so it binds the runner,
the model's code and every process they start. It refuses, with EPERM, the system calls that let
code hold resources outside the sandbox's limits or reach kernel surfaces that the sandbox has no
use for:

- new namespaces of any kind: ``unshare``, ``setns``, and ``clone`` with a ``CLONE_NEW*`` flag; a
  nested user namespace would hand the code every capability over new mounts (a tmpfs of any
  size past the disk limit) and namespaced kernel surfaces (netfilter and the like).
  ``clone3`` gets ENOSYS: its flags sit in memory a filter cannot read, and glibc then falls
  back to ``clone`` (threads and fork keep working);
- memory outside the address-space and disk limits: ``memfd_create``, ``memfd_secret``,
  System V shared memory, message queues and semaphores;
- ``io_uring``, the kernel keyring (``add_key``, ``request_key``, ``keyctl``: a channel between
  sandboxes), mounts, BPF, perf events, ``userfaultfd``, ``ptrace`` and cross-process memory
  access, modules, kexec, swap, reboot, quotas and file handles.

System calls of another ABI (i386 through ``int 0x80``, x32) could name the same calls by other
numbers: they end the process. Linux on x86_64 and aarch64 is supported; elsewhere
:func:`program` returns None and the caller refuses to run code.
"""

from __future__ import annotations

import errno
import functools
import platform
import struct

# struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}; the offsets are those of struct seccomp_data
LOAD = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET = 0x06  # BPF_RET | BPF_K
NR, ARCH, ARG0_LOW = 0, 4, 16  # little-endian: the low half of args[0] comes first
ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
ERRNO = 0x00050000
X32_BIT = 0x40000000
CLONE_NAMESPACES = 0x7E020000
"""CLONE_NEWNS | CLONE_NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (CLONE_NEWTIME
exists only for unshare and clone3, both refused whole)."""

# Every call named here but SPECIAL is refused. Numbers from the kernel's headers
# (asm/unistd_64.h; asm-generic/unistd.h for aarch64).
X86_64 = {
    "unshare": 272, "setns": 308, "clone": 56, "clone3": 435, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "memfd_create": 319,
    "memfd_secret": 447, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169,
    "syslog": 103, "quotactl": 179, "quotactl_fd": 443, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "lookup_dcookie": 212, "fanotify_init": 300, "shmget": 29,
    "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66,
    "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
    "pidfd_getfd": 438, "kcmp": 312, "modify_ldt": 154,
}  # fmt: skip
AARCH64 = {
    "unshare": 97, "setns": 268, "clone": 220, "clone3": 435, "mount": 40, "umount2": 39,
    "pivot_root": 41, "chroot": 51, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "memfd_create": 279,
    "memfd_secret": 447, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "add_key": 217, "request_key": 218, "keyctl": 219, "bpf": 280, "perf_event_open": 241,
    "userfaultfd": 282, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
    "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "acct": 89, "swapon": 224, "swapoff": 225, "reboot": 142,
    "syslog": 116, "quotactl": 60, "quotactl_fd": 443, "open_by_handle_at": 265,
    "name_to_handle_at": 264, "lookup_dcookie": 18, "fanotify_init": 262, "shmget": 194,
    "shmat": 196, "shmctl": 195, "shmdt": 197, "semget": 190, "semop": 193, "semctl": 191,
    "semtimedop": 192, "msgget": 186, "msgsnd": 189, "msgrcv": 188, "msgctl": 187,
    "pidfd_getfd": 438, "kcmp": 272,
}  # fmt: skip
SPECIAL = ("clone", "clone3")
"""Not refused whole: clone is checked for namespace flags, clone3 gets ENOSYS."""
ARCHES = {"x86_64": (0xC000003E, X86_64), "aarch64": (0xC00000B7, AARCH64)}
"""machine -> (AUDIT_ARCH_*, system call numbers)."""


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


@functools.cache
def program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (``platform.machine()`` by default) as bwrap reads it: packed
    ``struct sock_filter`` instructions. None where the machine is not supported."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    deny = ERRNO | errno.EPERM
    ops = [_op(LOAD, ARCH), _op(JEQ, audit_arch, jt=1), _op(RET, KILL_PROCESS), _op(LOAD, NR)]
    if audit_arch == ARCHES["x86_64"][0]:
        ops += [_op(JGE, X32_BIT, jf=1), _op(RET, KILL_PROCESS)]
    for name, number in numbers.items():
        if name not in SPECIAL:
            ops += [_op(JEQ, number, jf=1), _op(RET, deny)]
    ops += [_op(JEQ, numbers["clone3"], jf=1), _op(RET, ERRNO | errno.ENOSYS)]
    ops += [_op(JEQ, numbers["clone"], jf=3), _op(LOAD, ARG0_LOW)]
    ops += [_op(JSET, CLONE_NAMESPACES, jf=1), _op(RET, deny)]
    ops.append(_op(RET, ALLOW))
    return b"".join(ops)
