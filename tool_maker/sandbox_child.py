"""The code that runs inside the sandbox's child process (passed to ``python -I -S -B -c``).

It is stand-alone: standard library only, nothing from formalist, so it runs under whatever
interpreter the sandbox picked. In order, it:

1. reads one JSON request from standard input (code, entry point, arguments, limits, layers);
2. moves its own standard output to a private descriptor for the reply and points descriptors 1
   and 2 at the parent's output pipe, so whatever the tool prints is counted there;
3. sets the resource limits, then the Landlock rules, then the seccomp filter (each confirmed; a
   layer the parent asked for that cannot be set stops the child before any tool code runs);
4. with ``guards`` on, gives the tool a builtins table without the banned names and an
   ``__import__`` that admits only the allowed modules;
5. runs the code, calls the entry point, and writes one JSON reply: ``{"status": "ok", "value"}``,
   ``{"status": "error", ...}``, ``{"status": "memory"}``, ``{"status": "bad_result", ...}``,
   ``{"status": "refused", ...}``; every reply also lists the layers that were set.
"""

import json
import os
import resource
import sys


def _reply(fd, obj, value_json=None):
    text = json.dumps(obj)
    if value_json is not None:  # the value is already JSON text: splice it in, not encode it twice
        text = text[:-1] + ', "value": ' + value_json + "}"
    data = text.encode("ascii")
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _set_limits(limits):
    pairs = [
        (resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1),
        (resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"]),
        (resource.RLIMIT_FSIZE, limits["file_size_bytes"], limits["file_size_bytes"]),
        (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
        (resource.RLIMIT_NPROC, limits["processes"], limits["processes"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in pairs:
        resource.setrlimit(which, (soft, hard))
        if resource.getrlimit(which) != (soft, hard):
            raise OSError(f"limit {which} did not take")


# Landlock (https://docs.kernel.org/userspace-api/landlock.html): the same numbers on every
# architecture. Rights for files, then those that only make sense on directories.
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1, 2, 4, 8
_LL_TRUNCATE, _LL_IOCTL_DEV = 1 << 14, 1 << 15


def _landlock(read_paths):
    """Confine the file system to reading ``read_paths``; returns the Landlock ABI version."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not enabled in this kernel")
    handled = (1 << 13) - 1
    if abi >= 2:
        handled |= 1 << 13  # REFER
    if abi >= 3:
        handled |= _LL_TRUNCATE
    if abi >= 5:
        handled |= _LL_IOCTL_DEV
    fields = [("fs", ctypes.c_uint64)]
    if abi >= 4:
        fields.append(("net", ctypes.c_uint64))
    if abi >= 6:
        fields.append(("scoped", ctypes.c_uint64))
    attr_type = type("RulesetAttr", (ctypes.Structure,), {"_fields_": fields})
    attr = attr_type()
    attr.fs = handled
    if abi >= 4:
        attr.net = 1 | 2  # TCP bind and connect: handled, and no rule allows them
    if abi >= 6:
        attr.scoped = 1 | 2  # abstract UNIX sockets and signals stay inside the sandbox

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    for path in read_paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a path this system does not have
        try:
            is_dir = os.path.isdir(path)
            rights = _LL_READ_FILE | _LL_EXECUTE | (_LL_READ_DIR if is_dir else 0)
            rule = PathBeneath(rights, fd)
            if libc.syscall(445, ruleset, 1, ctypes.byref(rule), 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule failed for " + path)
        finally:
            os.close(fd)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.syscall(446, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)
    return abi


def _seccomp(bpf):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


def _guarded_builtins(banned, allowed_imports):
    import builtins

    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0:
            raise ImportError("relative imports are not available to tools")
        if name not in allowed_imports and name.split(".")[0] not in allowed_imports:
            raise ImportError(f"importing {name!r} is not allowed in the sandbox")
        return real_import(name, globals, locals, fromlist, level)

    table = {k: v for k, v in vars(builtins).items() if k not in banned}
    table["__import__"] = guarded_import
    return table


def _tool_line(tb):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tool>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _text(exc):
    try:
        return str(exc)[:2000]
    except BaseException:  # a tool's exception whose __str__ itself fails
        return "(the exception's message could not be read)"


def main():
    raw = sys.stdin.buffer.read()
    req = json.loads(raw)
    del raw
    proto = os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY) if os.path.exists(os.devnull) else -1
    if devnull >= 0:
        os.dup2(devnull, 0)
        os.close(devnull)
    else:
        os.close(0)
    layers = []
    try:
        _set_limits(req["limits"])
        layers.append("rlimits")
        if req.get("landlock"):
            paths = [p for p in sys.path if p] + list(req["landlock"]) + [os.getcwd()]
            layers.append(f"landlock:abi{_landlock(paths)}")
        if req.get("seccomp"):
            _seccomp(bytes.fromhex(req["seccomp"]))
            layers.append("seccomp")
    except Exception as e:
        _reply(
            proto,
            {"status": "refused", "message": f"a sandbox layer failed: {e}", "layers": layers},
        )
        return
    sys.modules.pop("ctypes", None)
    max_result = int(req["limits"]["result_bytes"])
    dumps = json.dumps
    ns = {"__name__": "__tool__"}
    if req.get("guards", True):
        ns["__builtins__"] = _guarded_builtins(set(req["banned"]), set(req["allowed_imports"]))
    reply: dict = {"status": "error", "type": "SandboxError", "message": "no reply", "line": None}
    value_json = None
    try:
        code = compile(req["code"], "<tool>", "exec")
        exec(code, ns)  # noqa: S102 - this is the sandbox child: running the tool is its job
        fn = ns.get(req["entry"])
        if not callable(fn):
            reply = {
                "status": "error",
                "type": "NameError",
                "message": f"the code defines no function named {req['entry']!r}",
                "line": None,
            }
        else:
            value = fn(*req.get("args", []), **req.get("kwargs", {}))
            try:
                text = dumps(value, allow_nan=False)
            except (TypeError, ValueError) as e:
                reply = {"status": "bad_result", "message": f"the result is not JSON: {_text(e)}"}
            else:
                if not isinstance(text, str):
                    reply = {"status": "bad_result", "message": "the result is not JSON"}
                elif len(text) > max_result:
                    reply = {
                        "status": "bad_result",
                        "message": f"the result is {len(text)} characters of JSON; the limit is {max_result}",
                    }
                else:
                    reply = {"status": "ok"}
                    value_json = text
    except MemoryError:
        reply = {"status": "memory"}
    except RecursionError as e:
        reply = {
            "status": "error",
            "type": "RecursionError",
            "message": _text(e),
            "line": _tool_line(e.__traceback__),
        }
    except BaseException as e:  # the tool's own exception (SystemExit and KeyboardInterrupt too)
        reply = {
            "status": "error",
            "type": type(e).__name__,
            "message": _text(e),
            "line": _tool_line(e.__traceback__),
        }
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    reply["layers"] = layers
    _reply(proto, reply, value_json)


main()
