"""The code that runs inside the sandbox's child process (passed to ``python -I -S -B -c``).

It is stand-alone: standard library only, nothing from formalist, so it runs under whatever
interpreter the sandbox picked. In order, it:

1. reads one JSON request from standard input (code, entry point, arguments, limits, layers);
2. moves its own standard output to a private descriptor for the reply and points descriptors 1
   and 2 at the parent's output pipe, so whatever the tool prints is counted there;
3. sets the resource limits, then the Landlock rules, then the seccomp filter (each confirmed),
   and writes the *setup line* on the reply descriptor: ``{"setup": "ok"}`` or
   ``{"setup": "failed", "layer": ..., "message": ...}`` (then it stops). No tool code exists
   in the process yet, so this line is the only thing the host believes from the child;
4. with ``guards`` on, gives the tool a builtins table without the banned names, an
   ``__import__`` that hands out views of the allowed modules only (public names, string-keyed
   getters checked, string-to-code helpers withheld), and an audit hook that refuses the tool
   frames and code objects and refuses compiling code;
5. runs the code, calls the entry point, and writes the reply after the setup line:
   ``{"status": "ok", "value"}``, ``{"status": "error", ...}``, ``{"status": "memory"}`` or
   ``{"status": "bad_result", ...}``. The tool can reach this writer and this descriptor, so the
   host treats the reply as the tool's own data: checked, bounded, and never about layers.
"""

import json
import os
import resource
import sys


def _write(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _reply(fd, obj, value_json=None):
    """The tool's reply. It is written by code the tool can reach (a tool may patch ``json`` or
    write on ``fd`` itself), so the host reads it as untrusted data: parsed strictly, bounded,
    and never believed about the layers."""
    text = json.dumps(obj)
    if value_json is not None:  # the value is already JSON text: splice it in, not encode it twice
        text = text[:-1] + ', "value": ' + value_json + "}"
    _write(fd, text.encode("ascii"))


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


# Modules that C code of allowed modules imports on a tool's behalf: ``datetime.strftime`` imports
# ``time`` and ``strptime`` imports ``_strptime``. They are imported before the tool runs, and the
# guarded import hands them out only to that C code (``PyImport_Import`` passes an empty *list*
# as ``fromlist``; an ``import`` statement passes ``None`` or a tuple).
_INTERNAL_IMPORTS = ("time", "_strptime")

# Callables left out of the tool's view of a module: they turn strings into attribute access or
# into code (``typing.get_type_hints`` evaluates string annotations).
_WITHHELD = {
    "string": ("Formatter",),
    "typing": ("get_type_hints", "ForwardRef"),
}

# Where a tool may have code compiled on its behalf: dataclasses and namedtuple generate their
# methods from checked identifiers; typing compiles forward references (``Optional["Node"]``)
# but may not evaluate them (``_EVALUATORS``: get_type_hints would run any string as code).
_COMPILERS = ("/dataclasses.py", "/collections/__init__.py", "/typing.py")
_EVALUATORS = ("/typing.py",)


def _name_ok(name, banned_attributes):
    if not isinstance(name, str):
        return False
    return all(
        p and not p.startswith("_") and p not in banned_attributes and p != "format"
        for p in name.split(".")
    )


def _guarded_builtins(banned, allowed_imports, banned_attributes):
    """The tool's builtins: without ``banned``, with an import that hands out *views* of the
    allowed modules (their public names only; a module they import is there only as a view of an
    allowed module) and with the string-keyed getters of ``operator`` checked."""
    import builtins
    import operator
    import types

    real_import = builtins.__import__
    real_attrgetter, real_methodcaller = operator.attrgetter, operator.methodcaller

    def allowed(name):  # exactly: a package's other submodules (json.tool...) are not allowed
        return name in allowed_imports

    def attrgetter(attr, *attrs):
        for a in (attr, *attrs):
            if not _name_ok(a, banned_attributes):
                raise AttributeError(f"the attribute {a!r} is not available to tools")
        return real_attrgetter(attr, *attrs)

    def methodcaller(name, *args, **kwargs):
        if not _name_ok(name, banned_attributes):
            raise AttributeError(f"the method {name!r} is not available to tools")
        return real_methodcaller(name, *args, **kwargs)

    replaced = {("operator", "attrgetter"): attrgetter, ("operator", "methodcaller"): methodcaller}
    views: dict = {}

    def view(module):
        """The tool's view of ``module``; refreshed on each import (a submodule imported since
        shows up in its package's view)."""
        name = module.__name__
        v = views.get(name)
        if v is None:
            v = views[name] = types.ModuleType(name, getattr(module, "__doc__", None))
        withheld = _WITHHELD.get(name, ())
        for key, value in list(vars(module).items()):
            if key.startswith("_") or key in withheld or key in banned_attributes:
                continue
            if key in vars(v):
                continue
            if isinstance(value, types.ModuleType):
                if not allowed(value.__name__):
                    continue
                value = view(value)
            setattr(v, key, replaced.get((name, key), value))
        return v

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name in _INTERNAL_IMPORTS and type(fromlist) is list and not fromlist and not level:
            return sys.modules[name]  # C code of an allowed module (see _INTERNAL_IMPORTS)
        if level != 0:
            raise ImportError("relative imports are not available to tools")
        if not isinstance(name, str) or not allowed(name):
            raise ImportError(f"importing {name!r} is not allowed in the sandbox")
        real_import(name, None, None, (), 0)
        module = sys.modules[name]
        if fromlist:
            for item in fromlist:
                if not isinstance(item, str) or (item.startswith("_") and item != "*"):
                    raise ImportError(f"importing {item!r} from {name!r} is not allowed")
                if item != "*" and not hasattr(module, item):
                    sub = name + "." + item
                    if not allowed(sub):
                        raise ImportError(f"importing {sub!r} is not allowed in the sandbox")
                    real_import(sub, None, None, (), 0)
            return view(module)
        return view(sys.modules[name.split(".")[0]])

    table = {k: v for k, v in vars(builtins).items() if k not in banned}
    table["__import__"] = guarded_import
    return table


def _audit_guard(state):
    """An audit hook (it cannot be removed) that, while ``state["tool"]`` is set, refuses to the
    tool's own code the interpreter internals CPython audits (frames, code objects: the
    ``object.__getattr__`` event), refuses to compile code anywhere but in the standard modules
    that generate methods (dataclasses, namedtuple) or forward references (typing), and refuses
    typing's evaluation of strings."""

    def hook(event, args):
        if not state["tool"] or state["busy"]:
            return
        if event not in ("compile", "exec", "object.__getattr__"):
            return
        state["busy"] = True
        try:
            where = sys._getframe(1).f_code.co_filename
        finally:
            state["busy"] = False
        if event == "compile":
            if not where.endswith(_COMPILERS):
                raise RuntimeError("compiling code is not available to tools")
        elif event == "exec":
            if where.endswith(_EVALUATORS):
                raise RuntimeError("evaluating strings as code is not available to tools")
        elif not where.startswith(state["stdlib"]):  # the tool's code, or code it had compiled
            raise AttributeError(f"the attribute {args[1]!r} is not available to tools")

    sys.addaudithook(hook)


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


def _setup_line(fd, obj):
    """The child's first line on the reply descriptor, written before any tool code exists in
    this process: the host trusts this line (and only this one) about the layers."""
    _write(fd, (json.dumps(obj) + "\n").encode("ascii"))


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
    guards = req.get("guards", True)
    step = "rlimits"
    try:
        for name in _INTERNAL_IMPORTS:  # before Landlock and seccomp, and before the guards
            __import__(name)
        if guards:
            import dataclasses  # noqa: F401 - its methods are compiled by the audit-guarded path
            import operator  # noqa: F401
            import types  # noqa: F401
        _set_limits(req["limits"])
        if req.get("landlock"):
            step = "landlock"
            paths = [p for p in sys.path if p] + list(req["landlock"]) + [os.getcwd()]
            _landlock(paths)
        if req.get("seccomp"):
            step = "seccomp"
            _seccomp(bytes.fromhex(req["seccomp"]))
    except Exception as e:
        _setup_line(proto, {"setup": "failed", "layer": step, "message": _text(e)[:500]})
        return
    _setup_line(proto, {"setup": "ok"})
    sys.modules.pop("ctypes", None)
    max_result = int(req["limits"]["result_bytes"])
    dumps = json.dumps
    ns = {"__name__": "__tool__"}
    stdlib = (os.path.dirname(json.__path__[0]) + "/", "<frozen ")
    state = {"tool": False, "busy": False, "stdlib": stdlib}
    if guards:
        ns["__builtins__"] = _guarded_builtins(
            set(req["banned"]), set(req["allowed_imports"]), set(req["banned_attributes"])
        )
    reply: dict = {"status": "error", "type": "SandboxError", "message": "no reply", "line": None}
    value_json = None
    try:
        code = compile(req["code"], "<tool>", "exec")
        if guards:
            _audit_guard(state)
            state["tool"] = True
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
    except BaseException as e:  # the tool's own exception (SystemExit and KeyboardInterrupt too)
        reply = {"status": "error", "type": _text(type(e).__name__)[:100], "message": _text(e)}
        state["tool"] = False  # our own code reads the traceback's frames
        reply["line"] = _tool_line(e.__traceback__)
    state["tool"] = False
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    _reply(proto, reply, value_json)


main()
