"""Running a model's own code where it cannot end, hang or fake the audit: a worker process.

A ``callable:`` model and a trusted ``pickle:`` run code the audit did not write. That code
runs in a persistent worker process (one per model): the worker imports the module or
unpickles the file, then answers predict requests over a pipe. The parent waits for each
answer at most ``settings.model_timeout`` seconds; a worker that exits (``sys.exit``,
``os._exit``), is killed (a signal, the out-of-memory killer) or does not answer in time is
stopped and every later call on that model raises the same one-line :class:`ModelError`
at once, so the checks that need it are ERROR and the run still writes its report with the
audit's own exit code.

Workers are forked from a ``forkserver`` (``spawn`` where there is none), never forked from
this process, which may hold torch, onnxruntime or BLAS threads. The server preloads numpy,
pandas, scikit-learn and the audit's model code once, so a worker starts in tens of
milliseconds. The parent's ``__main__`` is not re-imported in workers (they run nothing from
it), so a script using the Python API needs no ``if __name__ == "__main__"`` guard for us.

Answers from a worker are a JSON header and, for predictions, the raw bytes of a float64
array: nothing in them is unpickled, so code in the worker cannot run code in the parent
through its answers. The one exception is a pickle that turns out to be a plain scikit-learn
estimator: the worker pickles it again and the parent reads it with
:func:`audit.models.pickle.load_plain`, which accepts data, numpy arrays and scikit-learn's
own classes only, and then runs it itself (gradient attacks and parameter counts need it).
Requests (the parent's own data frames) are pickled.

The one model that runs its code in this process is a ``callable:`` naming a
``torch.nn.Module``: white-box attacks need its gradients here. It is first loaded in a
worker (so an import that exits, hangs or crashes is caught there), then loaded again here
in a thread, waited for with the same timeout, with ``SystemExit`` caught; its predict calls
are guarded the same way. A thread cannot be killed: one that hangs keeps running in the
background after its check has ERRORed, and ``os._exit`` in its forward pass still ends the
process. See :func:`call_guarded`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver  # noqa: F401 - loaded once, outside pytester's module resets
import os
import signal
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any, NoReturn

from audit.errors import ModelError

__all__ = ["ModelWorker", "call_guarded", "guarded_error", "describe_exit", "PRELOAD"]

# imported once by the fork server: the adapters whose serve_* functions run in workers
PRELOAD = ("audit.models.callable", "audit.models.pickle", "sklearn.base", "joblib")
_MAX_ANSWER = 1 << 34  # bytes of one answer (a prediction array, a model pickled again)
_STOP_WAIT = 2.0  # seconds a worker asked to stop may take before it is killed
_STARTUP = 60.0  # seconds a worker may take to start, before any model code runs


def describe_exit(code: int | None) -> str:
    """``exited with status 3`` or ``was killed by signal 9 (SIGKILL)``, from an exit code."""
    if code is None:
        return "closed its connection without exiting"
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-code}{name}"


def _exit_fix(code: int | None) -> str:
    if code is not None and code < 0:
        return ("run the model on its own to see why (out of memory, or a crash in native "
                "code?)")
    return ("a model must return its predictions, not end its process (look for sys.exit, "
            "exit() or os._exit in its code)")


def timeout_message(label: str, timeout: float, doing: str, then: str) -> str:
    """The message of a model that did not answer in time; ``then`` says what became of it."""
    return (f"{label} did not answer within {timeout:g} s (settings.model_timeout) while "
            f"{doing}; {then}. Make the model faster, or raise settings.model_timeout")


_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    """The forkserver context (preloading :data:`PRELOAD`), or spawn where there is none."""
    global _context
    with _context_lock:
        if _context is None:
            context: Any
            if "forkserver" in multiprocessing.get_all_start_methods():
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(list(PRELOAD))
            else:  # pragma: no cover - Windows
                context = multiprocessing.get_context("spawn")
            _context = context
        return _context


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a process without telling it the parent's ``__main__`` (which multiprocessing
    would re-import there: a script without a main guard would run again)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _stop(process: Any, conn: Any) -> None:
    """Ask a worker to stop (its pipe closes), kill it if it does not."""
    with contextlib.suppress(OSError):
        conn.close()
    process.join(_STOP_WAIT)
    if process.exitcode is None:
        process.kill()
        process.join(_STOP_WAIT)


class ModelWorker:
    """One worker process holding one model, with a timeout on every answer.

    Parameters
    ----------
    label : str
        The model as messages name it, e.g. ``student (callable model:predict)``.
    timeout : float
        Seconds to wait for the load and for each prediction (``settings.model_timeout``).
    """

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.timeout = timeout
        self.failure: str | None = None  # once the worker failed, every call raises this
        # how long the model itself took on the last predict, timed in the worker (ms): the
        # efficiency checks time the model, not the pipe to its process
        self.last_call_ms: float | None = None
        context = _mp_context()
        self._conn, child = context.Pipe(duplex=True)
        # the fork server's environment is the one it started with: send today's
        self._process = context.Process(target=_serve, args=(child, dict(os.environ)),
                                        daemon=True, name=f"distill-audit model {label}")
        try:
            with _main_hidden():
                self._process.start()
        except Exception as exc:  # no processes left, or this one may not have children
            raise ModelError(f"{label}: could not start a process to run the model in "
                             f"({type(exc).__name__}: {exc})") from None
        finally:
            child.close()
        self._finalizer = weakref.finalize(self, _stop, self._process, self._conn)
        self._ready = False  # the worker says so before it runs any of the model's code
        self._lock = threading.Lock()  # one request at a time on the pipe

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def close(self) -> None:
        """Stop the worker (it is also stopped when this object is collected, and at exit)."""
        self._finalizer()

    # -- requests ---------------------------------------------------------------------
    def load(self, module: str, function: str, args: tuple[Any, ...],
             doing: str = "loading it") -> tuple[dict[str, Any], bytes | None]:
        """Run ``module.function(*args)`` in the worker: it returns ``(info, predict, blob)``
        there; the worker keeps ``predict`` and answers ``info`` (JSON) and ``blob`` (bytes or
        ``None``). A :class:`ModelError` raised there is raised here with its message."""
        header, payload = self._ask(("load", module, function, args), doing,
                                    f"{self.label} failed to load")
        return header["info"], (bytes(payload) if header.get("blob") else None)

    def predict(self, request: Any, where: str, expected: str) -> Any:
        """The model's raw output on ``request`` (rows of the data file ``where``) as a float64
        array of any shape; ``expected`` says what it should be, for output that is not
        numbers."""
        import numpy as np

        doing = f"predicting on {where}"
        header, payload = self._ask(("predict", request), doing,
                                    f"{self.label} failed to predict on {where}")
        if "not_numbers" in header:
            raise ModelError(f"{self.label} returned {header['not_numbers']} values that are not "
                             f"numbers ({header['why']}); expected {expected}")
        self.last_call_ms = float(header["ms"]) if "ms" in header else None
        shape = tuple(int(n) for n in header["shape"])
        size = 8
        for n in shape:
            size *= n
        if any(n < 0 for n in shape) or size != len(payload):
            self._fail(f"{self.label}: its process sent {len(payload)} bytes for an array of "
                       f"shape {shape}; report this as a bug")
        return np.frombuffer(payload, dtype=np.float64).reshape(shape).copy()

    # -- the pipe ---------------------------------------------------------------------
    def _ask(self, request: tuple[Any, ...], doing: str,
             failed: str) -> tuple[dict[str, Any], memoryview]:
        """Send ``request``; read the answer, one message: a JSON header, then after a zero byte
        any binary payload. ``failed`` starts the message for an exception the model raised."""
        with self._lock:
            if self.failure is not None:
                raise ModelError(self.failure)
            if not self._ready:
                self._await_ready(doing)
            try:
                self._conn.send(request)
            except (BrokenPipeError, EOFError, ConnectionResetError):
                self._died(doing)
            self._wait(doing)
            try:
                raw = self._conn.recv_bytes(_MAX_ANSWER)
            except (EOFError, OSError):
                self._died(doing)
        cut = raw.find(b"\0")
        try:
            header = json.loads(raw[:cut] if cut >= 0 else raw)
        except ValueError:
            self._fail(f"{self.label}: its process sent an unreadable answer while {doing}; "
                       "report this as a bug")
        if "model_error" in header:
            raise ModelError(header["model_error"])
        if "raised" in header:
            raise ModelError(f"{failed}: {header['raised']}: {header['message']}")
        return header, memoryview(raw)[cut + 1:] if cut >= 0 else memoryview(b"")

    def _await_ready(self, doing: str) -> None:
        """Wait for the worker to come up (the first one also waits for the fork server to
        import :data:`PRELOAD`): not the model's time, so not ``settings.model_timeout``."""
        self._ready = True
        try:
            up = self._conn.poll(max(self.timeout, _STARTUP))
        except (EOFError, OSError):
            up = True  # the read that follows reports it
        if not up:
            self._process.kill()
            self._fail(f"{self.label}: its process did not start within "
                       f"{max(self.timeout, _STARTUP):g} s; the machine may be overloaded")
        try:
            self._conn.recv_bytes(_MAX_ANSWER)
        except (EOFError, OSError):
            self._died(doing)

    def _wait(self, doing: str) -> None:
        try:
            ready = self._conn.poll(self.timeout)
        except (EOFError, OSError):
            ready = True  # the read that follows reports it
        if not ready:
            self._process.kill()
            self._process.join(_STOP_WAIT)
            self._fail(timeout_message(self.label, self.timeout, doing, "its process was stopped"))

    def _died(self, doing: str) -> NoReturn:
        self._process.join(_STOP_WAIT)
        code = self._process.exitcode
        self._fail(f"{self.label}: its process {describe_exit(code)} while {doing}; "
                   f"{_exit_fix(code)}")

    def _fail(self, message: str) -> NoReturn:
        self.failure = message
        self._finalizer()
        raise ModelError(message)


# --------------------------------------------------------------------------- in this process
def call_guarded(fn: Callable[[], Any], label: str, timeout: float, doing: str) -> Any:
    """``fn()`` in a thread, waited for at most ``timeout`` seconds; ``SystemExit`` and any
    other ``BaseException`` but ``KeyboardInterrupt`` become a :class:`ModelError`.

    For the one model whose code runs in this process (a torch module a callable names). A
    thread that does not finish in time cannot be stopped: it is left running, as a daemon.
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller, which decides
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name=f"distill-audit {label}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise ModelError(timeout_message(label, timeout, doing, "it runs in this process, where "
                                                                "its thread keeps running"))
    ok, value = outcome[0]
    if ok:
        return value
    raise guarded_error(value, label, doing)


def guarded_error(exc: BaseException, label: str, doing: str) -> BaseException:
    """What a model's in-process exception becomes: a :class:`ModelError` for ``SystemExit``
    and other non-``Exception`` exceptions (``KeyboardInterrupt`` and errors are kept)."""
    if isinstance(exc, (KeyboardInterrupt, Exception)):
        return exc
    if isinstance(exc, SystemExit):
        return ModelError(f"{label} tried to end the process (sys.exit({exc.code!r})) while "
                          f"{doing}; a model must return its predictions, not exit (remove the "
                          "call)")
    return ModelError(f"{label} raised {type(exc).__name__} while {doing}: {exc}")


# --------------------------------------------------------------------------- the worker side
def _serve(conn: Any, environ: dict[str, str]) -> None:
    """The worker: answer load and predict requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.clear()
    os.environ.update(environ)
    parent = multiprocessing.parent_process()
    if parent is not None:  # an orphan (its parent killed) must not run on forever
        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    predict: Callable[[Any], Any] | None = None
    _answer(conn, {"ready": True})
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if request[0] == "load":
                _, module, function, args = request
                info, predict, blob = getattr(import_module(module), function)(*args)
                _answer(conn, {"info": info, "blob": blob is not None}, blob)
            else:
                assert predict is not None, "predict before load"
                began = time.perf_counter_ns()
                raw = predict(request[1])
                _send_array(conn, raw, (time.perf_counter_ns() - began) / 1e6)
        except SystemExit:
            raise  # the parent reports the exit status
        except ModelError as exc:
            _answer(conn, {"model_error": str(exc)})
        except BaseException as exc:  # the model's own error, reported by the parent
            _answer(conn, {"raised": type(exc).__name__, "message": str(exc)})


def _answer(conn: Any, header: dict[str, Any], payload: bytes | None = None) -> None:
    """One message: the JSON header (which holds no zero byte), then ``payload``."""
    text = json.dumps(header).encode()
    conn.send_bytes(text if payload is None else b"".join((text, b"\0", payload)))


def _send_array(conn: Any, raw: Any, ms: float) -> None:
    """The model's output as a float64 array (shape header, then the bytes), or a message
    when it is not numbers (as :func:`audit.models.check_probabilities` words it)."""
    import numpy as np

    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        _answer(conn, {"not_numbers": type(raw).__name__, "why": str(exc)})
        return
    _answer(conn, {"shape": list(array.shape), "ms": ms}, np.ascontiguousarray(array).tobytes())
