"""The seccomp layer: a syscall filter compiled here (with libseccomp, through ``pyseccomp``) and
installed by the sandbox child on itself before the tool's code runs.

The filter allows by default and denies, with an errno the tool sees as a Python ``OSError``:
- network: every socket call;
- process creation and replacement: ``fork``, ``vfork``, ``clone``, ``clone3``, ``execve``,
  ``execveat`` (so no threads either: a tool is one thread of computation);
- signals to other processes, tracing, namespaces, mounts, kernel modules, BPF, io_uring (which
  would run socket and file operations outside this filter), keyrings, ``memfd_create``;
- any change to the file system: opening for writing, creating, truncating, linking, renaming,
  removing, changing modes or owners;
- raising resource limits again (``setrlimit``, ``prlimit64``);
- the terminal-injection ioctls ``TIOCSTI`` and ``TIOCLINUX``.
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
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
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
    "kcmp",
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
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
)


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

        for name in NETWORK + PROCESSES + OTHER_PROCESSES + KERNEL + FILE_SYSTEM:
            rule(deny, name)
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to
        # clone, which is denied above.
        rule(sc.ERRNO(errno.ENOSYS), "clone3")
        rule(sc.ERRNO(errno.ENOSYS), "openat2")
        for flag in _WRITE_FLAGS:
            rule(sc.ERRNO(errno.EACCES), "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
            rule(sc.ERRNO(errno.EACCES), "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
        for request in (_TIOCSTI, _TIOCLINUX):
            rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
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
