"""The seccomp layer: a syscall filter compiled here (with libseccomp, through ``pyseccomp``) and
installed by the sandbox child on itself before the tool's code runs.

The filter allows by default and denies, with an errno the tool sees as a Python ``OSError``:
- network: every socket call;
- process creation and replacement: ``fork``, ``vfork``, ``clone``, ``clone3``, ``execve``,
  ``execveat`` (so no threads either: a tool is one thread of computation);
- signals to other processes (``kill``..., pidfds, and the indirect ways: ``fcntl`` F_SETOWN,
  F_SETSIG, F_SETOWN_EX, leases and directory notices, the FIOSETOWN/SIOCSPGRP/FIOASYNC ioctls),
  tracing, reading or writing other processes' memory, changing their priority or group;
- kernel objects that outlive the call: System V shared memory, semaphores and message queues,
  POSIX message queues (and shared memory is not counted against the address-space limit);
- namespaces, mounts, kernel modules, BPF, io_uring (which would run socket and file operations
  outside this filter), keyrings, ``memfd_create``, ``userfaultfd``, inotify and fanotify;
- any change to the file system: opening for writing, creating, truncating, linking, renaming,
  removing, changing modes or owners, extended attributes (read or written, the ``*xattrat``
  family included), file locks;
- raising resource limits again (``setrlimit``, ``prlimit64``), changing identity;
- the terminal-injection ioctls ``TIOCSTI`` and ``TIOCLINUX``.
Syscalls newer than the installed libseccomp are added by their number (``UNIFIED_NUMBERS``).
A syscall from another architecture's table (``int 0x80``, x32) kills the process.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from dataclasses import dataclass

# open(2) flags that mean "this open may change the file system".
_O_WRONLY, _O_RDWR, _O_CREAT, _O_TRUNC, _O_APPEND = 0o1, 0o2, 0o100, 0o1000, 0o2000
_WRITE_FLAGS = (_O_WRONLY, _O_RDWR, _O_CREAT, _O_TRUNC, _O_APPEND)
_CLONE_THREAD = 0x00010000

NETWORK = (
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "shutdown",
)
PROCESSES = ("fork", "vfork", "clone", "execve", "execveat")
OTHER_PROCESSES = (
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "process_mrelease",
    "kcmp",
    "get_robust_list",
    # another process's scheduling, priority, pages or group
    "setpgid",
    "setsid",
    "setpriority",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    "ioprio_set",
    "migrate_pages",
    "move_pages",
    # identity
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
)
IPC = (
    # System V IPC and POSIX message queues: kernel objects that outlive the process (without an
    # IPC namespace they are shared with the host and with the next call), and System V shared
    # memory is not counted against the address-space limit until it is attached.
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "ipc",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    # watching other files and processes
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "fanotify_init",
    "fanotify_mark",
    "flock",
)
KERNEL = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "memfd_create",
    "memfd_secret",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "personality",
    "syslog",
    "iopl",
    "ioperm",
    "setrlimit",
    "prlimit64",
    "seccomp",
    "name_to_handle_at",
    "open_by_handle_at",
    "lookup_dcookie",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "sethostname",
    "setdomainname",
    "modify_ldt",
    "uselib",
    "quotactl_fd",
    "sysfs",
    "ustat",
    "_sysctl",
    "nfsservctl",
)
FILE_SYSTEM = (
    "creat",
    "truncate",
    "ftruncate",
    "fallocate",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    # extended attributes, read or written: data kept on a host file outside its contents
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
)
UNIFIED_NUMBERS = {
    # Syscalls newer than some libseccomp releases know by name. From 5.1 on, new syscalls have
    # one number on every architecture (plus the architecture's base, e.g. 4000 on MIPS o32),
    # found here from pidfd_open's (434).
    "statmount": 457,
    "listmount": 458,
    "lsm_set_self_attr": 460,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_getattr": 468,
    "file_setattr": 469,
}
# fcntl commands that signal another process (F_SETOWN, F_SETSIG, F_SETOWN_EX: SIGIO/SIGURG to a
# pid or group of the caller's choosing), take a lease or a directory notice (both signal), or
# lock a file the service may share (F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW).
FCNTL_DENIED = (8, 10, 15, 1024, 1026, 6, 7, 37, 38)
# ioctls: terminal injection (TIOCSTI, TIOCLINUX), setting the SIGIO owner (FIOSETOWN,
# SIOCSPGRP) and turning SIGIO on (FIOASYNC).
IOCTL_DENIED = (0x5412, 0x541C, 0x8901, 0x8902, 0x5452)


@dataclass(frozen=True, slots=True)
class SeccompFilter:
    """A compiled filter: ``bpf`` is the classic-BPF program (8 bytes an instruction) ready for
    ``prctl(PR_SET_SECCOMP)``; empty with ``reason`` when it could not be built here."""

    bpf: bytes
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.bpf)


@functools.cache
def compiled_filter() -> SeccompFilter:
    """The sandbox's filter for this machine's architecture, built once per process."""
    try:
        import pyseccomp as sc
    except ImportError as e:
        return SeccompFilter(
            b"", f"the seccomp binding is missing ({e}); run `pip install pyseccomp`"
        )
    except (OSError, RuntimeError) as e:  # the binding loads libseccomp.so.2 with ctypes
        return SeccompFilter(b"", f"libseccomp cannot be loaded ({e}); install libseccomp2")
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        deny = sc.ERRNO(errno.EPERM)

        def rule(action: int, name: str, *args: object) -> None:
            nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if nr < 0:  # a syscall this architecture does not have (e.g. fork on arm64)
                return
            f.add_rule(action, nr, *args)

        for name in NETWORK + PROCESSES + OTHER_PROCESSES + IPC + KERNEL + FILE_SYSTEM:
            rule(deny, name)
        base = sc.resolve_syscall(sc.Arch.NATIVE, "pidfd_open") - 434
        if base >= 0:
            for name, number in UNIFIED_NUMBERS.items():
                nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
                f.add_rule(deny, nr if nr >= 0 else base + number)
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to
        # clone, which is denied above.
        rule(sc.ERRNO(errno.ENOSYS), "clone3")
        rule(sc.ERRNO(errno.ENOSYS), "openat2")
        for flag in _WRITE_FLAGS:
            rule(sc.ERRNO(errno.EACCES), "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
            rule(sc.ERRNO(errno.EACCES), "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
        for request in IOCTL_DENIED:
            rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        for command in FCNTL_DENIED:
            rule(deny, "fcntl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, command))
            rule(deny, "fcntl64", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, command))
        fd, path = tempfile.mkstemp(prefix="formalist-bpf-")
        try:
            with os.fdopen(fd, "w+b") as out:
                f.export_bpf(out)
                out.flush()
                out.seek(0)
                bpf = out.read()
        finally:
            os.unlink(path)
    except (OSError, ValueError, AttributeError) as e:
        return SeccompFilter(b"", f"the seccomp filter could not be built: {e}")
    if not bpf or len(bpf) % 8:
        return SeccompFilter(b"", "libseccomp exported an empty or malformed filter")
    return SeccompFilter(bpf)
