# cloudfn Python worker. Started as: python -I -S -u -B python_runner.py REQ_FD RESP_FD
# Frames both ways: 4-byte big-endian length, then UTF-8 JSON. The first request is "init" (load
# the user's code once); then one "invoke" at a time. Started with a third argument "prewarm", the
# runner is a pre-started sandbox waiting for a function: it says {"type": "up"} once it is, and
# its init then carries the function's environment and rlimits, applied before the code loads.
# Whatever the user prints goes to fds 1/2, a separate pipe; after each invocation a marker
# carrying the request's nonce closes its logs, unless that pipe is already empty (the reply
# then says logs_closed: false).
import os
import sys
import time

# The C half of json, private to CPython: the json package imports `re`, +6.9 ms of an 8 ms bare
# start here against +0.3 ms for _json (2026-12); tests/executors/test_runner_json.py holds it to json.
import _json


class _JsonContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__
    memo = {}


_scan = _json.make_scanner(_JsonContext())


def _not_serialisable(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _encoder(allow_nan):
    return _json.make_encoder(
        None, _not_serialisable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, allow_nan
    )


_encode_strict = _encoder(False)
_encode = _encoder(True)


class json:  # the two calls the runner needs, with the standard library's behaviour
    @staticmethod
    def loads(data):
        s = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        obj, end = _scan(s, 0)
        _JsonContext.memo.clear()
        return obj

    @staticmethod
    def dumps(obj, allow_nan=True):
        return "".join((_encode if allow_nan else _encode_strict)(obj, 0))


REQ_FD = int(sys.argv[1])
RESP_FD = int(sys.argv[2])
PREWARM = sys.argv[3:4] == ["prewarm"]
RUNNER_PID = os.getpid()
ROOT = []  # the function's top folder, once loaded: stack frames name files relative to it


def _close_inherited(keep):
    """Close every fd but stdio and the protocol's before any user code loads: a second line
    behind the spawner's close_fds (uvloop's spawning ignored it, and each worker inherited the
    API's listening socket). Nothing of Python's own is open yet, so all else goes."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]  # the listing's own fd is closed by now
    except OSError:
        fds = None
    if fds is None:  # no /proc: every number up to the open-files limit
        edges = sorted(keep) + [os.sysconf("SC_OPEN_MAX")]
        for lo, hi in zip(edges, edges[1:], strict=False):  # one pair fewer than edges
            os.closerange(lo + 1, hi)
        return
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


_close_inherited({0, 1, 2, REQ_FD, RESP_FD})
_stdin_r = os.open(os.devnull, os.O_RDONLY)
if _stdin_r != 0:
    os.dup2(_stdin_r, 0)
    os.close(_stdin_r)


def _read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(REQ_FD, n - len(buf))
        if not chunk:
            os._exit(0)  # the platform closed the pipe: stop quietly
        buf += chunk
    return buf


def read_frame():
    size = int.from_bytes(_read_exact(4), "big")
    return json.loads(_read_exact(size))


def write_frame(obj, raw=None):
    if os.getpid() != RUNNER_PID:
        os._exit(1)  # a forked child of the user's code must never speak the protocol
    data = raw if raw is not None else json.dumps(obj).encode()
    data = len(data).to_bytes(4, "big") + data
    view = memoryview(data)
    while view:
        n = os.write(RESP_FD, view)
        view = view[n:]


def close_logs(nonce):
    """End the request's logs; True if a marker was written. None is written when the log pipe
    is empty: the platform has then read everything printed, and taken it in (it does both in
    one callback), before the reply is even written. That saves a write and a wake-up of the
    platform per invocation."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        import fcntl
        import termios

        if fcntl.ioctl(1, termios.FIONREAD, b"\0\0\0\0") == b"\0\0\0\0":
            return False
    except (ImportError, OSError):
        pass  # no count to be had: the marker tells
    try:
        os.write(1, b"\x1e" + nonce.encode() + b"\x1e")
        return True
    except OSError:
        return False


def _maxrss_kb():
    # VmHWM starts afresh at exec (ru_maxrss keeps the forking parent's peak).
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception:
        return 0


def _cpu():
    t = os.times()
    return t.user + t.system


def user_frames(tb, code_file):
    import traceback

    frames = []
    folder = _root(code_file)  # the function's other files are user code too
    for fs in traceback.extract_tb(tb):
        if fs.filename == code_file or fs.filename.startswith(folder):
            colno = getattr(fs, "colno", None)
            frames.append(
                {
                    "file": fs.filename[len(folder) :],
                    "line": fs.lineno or 0,
                    "function": fs.name,
                    "column": (colno + 1) if colno is not None else None,
                }
            )
    frames.reverse()  # innermost first, as in the Node.js and Go runners
    return frames


def _root(code_file):
    return (ROOT[0] if ROOT else os.path.dirname(code_file)) + "/"


def exc_frames(exc, code_file):
    """user_frames, with the spot of a SyntaxError in another file of the function first (an
    import of a module that does not compile): its traceback stops at the import line."""
    frames = user_frames(exc.__traceback__, code_file)
    folder = _root(code_file)
    name = getattr(exc, "filename", None) if isinstance(exc, SyntaxError) else None
    if isinstance(name, str) and name.startswith(folder) and exc.lineno:
        frames.insert(
            0, {"file": name[len(folder) :], "line": exc.lineno, "function": "<module>", "column": exc.offset}
        )
    return frames


def describe(exc):
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class Context(dict):
    """The platform's context map (the original's form: `context.get('function_name')`,
    `context['request_id']`), which is also a Lambda context object: its attributes are read from
    the map when asked for, so an invocation pays for none it does not use."""

    __slots__ = ("_deadline",)
    identity = None
    client_context = None

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline - time.time() * 1000))

    @property
    def function_name(self):
        return self.get("function_name", "")

    @property
    def function_version(self):
        return str(self.get("function_version") or "$LATEST")

    @property
    def memory_limit_in_mb(self):
        return str(self.get("memory_limit_mb", ""))  # a string, as Lambda's runtime gives it

    @property
    def aws_request_id(self):
        return self.get("request_id", "")

    @property
    def invoked_function_arn(self):
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self):
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self):
        day = time.strftime("%Y/%m/%d", time.gmtime())
        return f"{day}/[{self.function_version}]{self.get('function_id', '')}"


def load(init):
    code_file = init["code_path"]
    handler_name = init["handler"]
    ROOT[:] = [init.get("root_path") or os.path.dirname(code_file)]
    with open(code_file, encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, code_file, "exec")
    except SyntaxError as exc:
        msg = f"{type(exc).__name__}: {exc.msg} (line {exc.lineno}"
        msg += f", column {exc.offset})" if exc.offset else ")"
        return None, {
            "ok": False,
            "error_type": "CompileError",
            "error": msg,
            "stack": [
                {
                    "file": code_file[len(_root(code_file)) :],
                    "line": exc.lineno or 0,
                    "function": "<module>",
                    "column": exc.offset,
                }
            ],
        }
    import types

    module = types.ModuleType("function")
    module.__file__ = code_file
    sys.modules["function"] = module
    # The handler's own folder first (a handler in src/ imports src/util.py as `util`), then the
    # function's top folder (`from src import util`, as Lambda's /var/task), then dependencies.
    own = [os.path.dirname(code_file)]
    if ROOT[0] != own[0]:
        own.append(ROOT[0])
    if init.get("deps_path"):  # installed dependencies: after the function's own modules
        own.append(init["deps_path"])
    sys.path[0:0] = own
    try:
        exec(code, module.__dict__)
    except BaseException as exc:  # the module itself raised while loading
        return None, {
            "ok": False,
            "error_type": "CompileError",
            "error": f"error while loading the code: {describe(exc)}",
            "stack": exc_frames(exc, code_file),
        }
    target = module.__dict__.get(handler_name)
    if target is None and "." in handler_name:
        obj = module
        for part in handler_name.split("."):
            obj = getattr(obj, part, None)
        target = obj or module.__dict__.get(handler_name.rsplit(".", 1)[-1])
    if not callable(target):
        defined = sorted(
            k for k, v in module.__dict__.items() if callable(v) and getattr(v, "__module__", None) == "function"
        )
        hint = f"; functions defined: {', '.join(defined)}" if defined else ""
        return None, {
            "ok": False,
            "error_type": "CompileError",
            "error": f"handler '{handler_name}' is not defined in the code{hint}",
            "stack": [],
        }
    return (target, code_file), {"ok": True, "type": "ready"}


def adopt(init):
    """A pre-started runner takes on its function: rlimits first (lowered only: no way back up),
    then the function's environment, all before any of its code runs."""
    try:
        limits = init.get("limits") or {}
        if limits:
            import resource

            for name, (soft, hard) in limits.items():
                resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()), (soft, hard))
        os.environ.update(init.get("env") or {})
    except Exception as exc:
        os.write(2, f"cloudfn: cannot apply the function's limits and environment: {exc}\n".encode())
        os._exit(71)


def main():
    if PREWARM:
        write_frame({"type": "up", "logs_closed": False})
    init = read_frame()
    if PREWARM:
        adopt(init)
    t0 = time.perf_counter()
    loaded, reply = load(init)
    reply["load_ms"] = (time.perf_counter() - t0) * 1000
    reply["logs_closed"] = close_logs(init.get("nonce", ""))
    reply["nonce"] = init.get("nonce", "")  # the platform takes no reply without its request's nonce
    write_frame(reply)
    if loaded is None:
        return
    handler, code_file = loaded
    loop = None
    code_obj = getattr(handler, "__code__", None)
    is_async = bool(code_obj is not None and code_obj.co_flags & 0x180)  # CO_COROUTINE
    max_result = int(init.get("max_result_bytes", 6 * 1024 * 1024))
    want_rss = init.get("rss", True)  # False when the platform reads the peak from the cgroup
    armed = None
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    except Exception:
        resource = None
        hard = -1
    while True:
        req = read_frame()
        timeout = float(req.get("timeout", 30))
        if resource is not None and hard != resource.RLIM_INFINITY and hard > 0:
            # RLIMIT_CPU counts the worker's whole life: give this invocation `timeout` seconds.
            soft = min(hard - 1, int(_cpu() + timeout + 1))
            if soft != armed:
                try:
                    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
                    armed = soft
                except (ValueError, OSError):
                    pass
        ctx = Context(req.get("context") or {})
        ctx._deadline = float(req.get("deadline_ms", time.time() * 1000 + timeout * 1000))
        reply = None
        try:
            result = handler(req.get("event"), ctx)
            if is_async or hasattr(result, "__await__"):
                if loop is None:
                    import asyncio

                    loop = asyncio.new_event_loop()
                    asyncio.set_event_loop(loop)
                result = loop.run_until_complete(result)
        except MemoryError as exc:
            reply = {
                "ok": False,
                "error_type": "MemoryLimitExceeded",
                "error": f"MemoryError: the function needed more than its {init.get('memory_mb')} MB",
                "stack": exc_frames(exc, code_file),
            }
        except RecursionError as exc:
            reply = {
                "ok": False,
                "error_type": "HandlerError",
                "error": f"RecursionError: {exc}",
                "stack": user_frames(exc.__traceback__, code_file)[:20],
            }
        except BaseException as exc:
            if os.getpid() != RUNNER_PID:
                os._exit(1)
            reply = {
                "ok": False,
                "error_type": "HandlerError",
                "error": describe(exc),
                "stack": exc_frames(exc, code_file),
            }
        raw = None
        if reply is None:
            try:
                body = json.dumps(result, allow_nan=False)
                if len(body) > max_result:
                    reply = {
                        "ok": False,
                        "error_type": "OutputTooLarge",
                        "error": f"the result is {len(body)} bytes; the limit is {max_result}",
                    }
                else:
                    raw = ('{"ok":true,"result":' + body).encode()
            except (TypeError, ValueError, RecursionError) as exc:
                reply = {
                    "ok": False,
                    "error_type": "InvalidResult",
                    "error": f"the result is not JSON-serialisable: {exc}",
                }
        extra = {
            "maxrss_kb": _maxrss_kb() if want_rss else 0,
            "cpu": _cpu(),
            "logs_closed": close_logs(req.get("nonce", "")),
            "nonce": req.get("nonce", ""),
        }
        if raw is not None:
            raw += b"," + json.dumps(extra).encode()[1:]
            write_frame(None, raw)
        else:
            reply.update(extra)
            write_frame(reply)


if __name__ == "__main__":
    main()
