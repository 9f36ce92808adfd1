"""One supervisor for the child processes that evaluate policies.

A policy can crash regorus (a function recursing until the native stack overflows) or run without
end. Every engine that must survive that evaluates in a child process supervised here: the
isolated mode of :class:`~cortex_trust.engine.EmbeddedEngine` (the child runs
:mod:`cortex_trust.engine._worker`) and the registry's re-tiering pool.

The parent's side is :class:`WorkerProcess`:

* **spawn**: a fresh interpreter, never a fork (regorus engines are bound to the thread that
  built them), with this very ``cortex_trust`` first on its import path, never a module from the
  working directory (``PYTHONSAFEPATH``: a plugin checkout holding a ``regorus.py`` must not run
  inside the engine deciding on it), and no Rust backtraces;
* **ready handshake**: :meth:`WorkerProcess.start` sends the child its ``init`` message; the
  child's first answer is its ready (or refusal) message, due within the start timeout;
* **request with a deadline**: the child answers every request with exactly one message, in
  order; a child that has not answered by the deadline is killed and the call raises
  :class:`~cortex_trust.errors.EngineTimeout`;
* **crash**: a child that exits or breaks its pipe is reaped and the call raises
  :class:`~cortex_trust.errors.EngineError` naming the signal or exit status and the last line
  the child wrote to stderr;
* **replace**: after a timeout or a crash the handle holds no child; :meth:`WorkerProcess.start`
  starts a fresh one on it.

The child's side is :class:`WorkerChannel`: it turns core files off and keeps the original
standard output for answers while everything else writing to fd 1 goes to stderr, so stray
native output cannot corrupt the protocol.

Messages are frames (a 4-byte big-endian length, then that many bytes); what a frame holds is
the business of the two sides. Writes never block the parent past a deadline: a child that stops
reading is a child that does not answer.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import EngineError, EngineTimeout

__all__ = ["WorkerChannel", "WorkerProcess"]

_HEADER = struct.Struct("!I")
_CHUNK = 1 << 20
#: The directory that holds this cortex_trust: first on every child's import path.
_ROOT = str(Path(__file__).resolve().parents[2])
_LOADING = "loading the policies"
_CRASH_HINT = "the policies may recurse without bound"


def _frames(frames: Iterable[bytes]) -> bytes:
    return b"".join(b for f in frames for b in (_HEADER.pack(len(f)), f))


class WorkerProcess:
    """The parent's handle on one supervised child, ``python <argv...>``.

    ``path`` adds directories to the child's import path (after this cortex_trust's). One
    caller at a time: the engines serialise their calls.
    """

    def __init__(self, argv: Sequence[str], *, path: Sequence[str] = ()) -> None:
        self.argv = (sys.executable, *argv)
        self._path = tuple(path)
        self.proc: subprocess.Popen[bytes] | None = None
        #: When the current child must have answered its ``init`` (``time.monotonic``).
        self.ready_by = 0.0
        #: True once the current child has answered its ``init``.
        self.ready = False
        self._start_timeout = 0.0
        self._stderr: IO[bytes] | None = None
        self._in = bytearray()
        self._out = memoryview(b"")
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def alive(self) -> bool:
        """True while a child is running."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The current child's process id."""
        return None if self.proc is None else self.proc.pid

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, init: bytes, *, timeout: float) -> None:
        """Spawn a fresh child (stopping the current one) and send it ``init``; its first
        answer, due within ``timeout`` seconds, is the ready message (:meth:`await_ready`, or
        :meth:`pump` when waiting on several children). Never blocks on the child.

        Raises :class:`EngineError` when the process cannot be started.
        """
        self.stop()
        env = dict(os.environ)
        path = dict.fromkeys((_ROOT, *self._path, *env.get("PYTHONPATH", "").split(os.pathsep)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        env["PYTHONSAFEPATH"] = "1"  # like -P: no working directory on the child's sys.path
        env["RUST_BACKTRACE"] = "0"
        env["RUST_LIB_BACKTRACE"] = "0"
        self._stderr = tempfile.TemporaryFile()  # lives as long as the child
        try:
            self.proc = subprocess.Popen(list(self.argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=env, bufsize=0, close_fds=True)
        except OSError as e:
            self.stop()
            raise EngineError(f"cannot start the policy engine worker: {e.strerror or e}",
                              advice="check that the Python interpreter can start processes") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        for pipe in (self.proc.stdin, self.proc.stdout):
            _widen(pipe.fileno())
        # Non-blocking writes: a child that stops reading must not hang us past a deadline.
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._start_timeout = timeout
        self.ready_by = time.monotonic() + timeout
        self.send(init)

    def await_ready(self) -> bytes:
        """The child's answer to its ``init``; raises :class:`EngineTimeout` past the start
        timeout and :class:`EngineError` when the child dies (the child is stopped)."""
        frame = self._receive(self.ready_by, self._start_timeout, _LOADING)
        self.ready = True
        return frame

    def stop(self) -> None:
        """Kill the child (if any) and release its pipes; the handle can start a fresh one."""
        if self.proc is not None:
            _kill(self.proc)
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._in = bytearray()
        self._out = memoryview(b"")
        self.ready = False

    # -- messages --------------------------------------------------------------------------

    def request(self, *frames: bytes, timeout: float, doing: str) -> bytes:
        """Send ``frames`` and return the answer, all within ``timeout`` seconds.

        Raises :class:`EngineTimeout` (the child is killed) or :class:`EngineError` (it died);
        ``doing`` says what for, in the message.
        """
        deadline = time.monotonic() + timeout
        self.send(*frames)
        return self._receive(deadline, timeout, doing)

    def send(self, *frames: bytes) -> None:
        """Queue ``frames`` for the child and write what the pipe takes now; the rest goes out
        while waiting for the answer (:meth:`request`, :meth:`await_ready`, :meth:`pump`).
        Never blocks; a child that is gone shows when its answer is read."""
        data = _frames(frames)
        self._out = memoryview(self._out.tobytes() + data if self._out else data)
        self._flush()

    def pump(self, *, doing: str) -> bytes | None:
        """Without blocking: write what is queued, read what has arrived, and return the next
        complete answer, if there is one. Raises :class:`EngineError` when the child died."""
        self._flush()
        frame = self._frame()
        if frame is None and self._readable(0.0):
            frame = self._drain(doing)
        if frame is not None:
            self.ready = True
        return frame

    @staticmethod
    def wait(workers: Iterable[WorkerProcess], timeout: float) -> None:
        """Block until one of ``workers`` has something to read or can take queued bytes, or
        ``timeout`` seconds have passed (then :meth:`pump` each)."""
        readers: list[int] = []
        writers: list[int] = []
        for w in workers:
            proc = w.proc
            if proc is None or proc.stdout is None or proc.stdin is None:
                continue
            readers.append(proc.stdout.fileno())
            if w._out:
                writers.append(proc.stdin.fileno())
        if readers:
            select.select(readers, writers, [], max(0.0, timeout))

    def timed_out(self, timeout: float, doing: str) -> EngineTimeout:
        """Kill a child that did not answer within ``timeout``; the error to raise."""
        self.stop()
        return EngineTimeout(f"the policy engine timed out after {timeout:g}s while {doing}",
                             advice="simplify the policy (large comprehensions, deep iteration) "
                                    "or raise the timeout")

    def crashed(self, doing: str) -> EngineError:
        """Reap a child that exited or broke its pipe; the error to raise."""
        proc = self.proc
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - closed its pipe, still running
                pass
        tail = self._stderr_tail()
        self.stop()
        rc = None if proc is None else proc.returncode
        if rc is not None and rc < 0:
            try:
                sig = f"signal {-rc}, {signal.Signals(-rc).name}"
            except ValueError:
                sig = f"signal {-rc}"
            what = f"crashed ({sig})"
        else:
            what = f"exited unexpectedly (status {rc})"
        return EngineError(f"the policy engine {what} while {doing}; {_CRASH_HINT}{tail}",
                           advice="look for recursive functions in the organization's policies")

    # -- internals -------------------------------------------------------------------------

    def _receive(self, deadline: float, timeout: float, doing: str) -> bytes:
        while True:
            frame = self._frame()
            if frame is not None:
                return frame
            proc = self.proc
            if proc is None or proc.stdout is None or proc.stdin is None:
                raise self.crashed(doing)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.timed_out(timeout, doing)
            fd = proc.stdout.fileno()
            readable, writable, _ = select.select(
                [fd], [proc.stdin.fileno()] if self._out else [], [], remaining)
            if writable:
                self._flush()
            if readable:
                self._read(fd, doing)
            elif not writable:
                raise self.timed_out(timeout, doing)

    def _flush(self) -> None:
        proc = self.proc
        if not self._out or proc is None or proc.stdin is None:
            return
        fd = proc.stdin.fileno()
        while self._out:
            try:
                n = os.write(fd, self._out[:_CHUNK])
            except BlockingIOError:
                return  # the pipe is full: the rest goes out when the child has read
            except BrokenPipeError:
                # The child is gone: its end of the answer pipe is closed too, and reading it
                # reports the crash with the child's exit status.
                self._out = memoryview(b"")
                return
            self._out = self._out[n:]

    def _readable(self, timeout: float) -> bool:
        proc = self.proc
        if proc is None or proc.stdout is None:
            return False
        readable, _, _ = select.select([proc.stdout.fileno()], [], [], timeout)
        return bool(readable)

    def _drain(self, doing: str) -> bytes | None:
        """Read while bytes are waiting, until an answer is complete."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            self._read(fd, doing)
            frame = self._frame()
            if frame is not None or not self._readable(0.0):
                return frame

    def _read(self, fd: int, doing: str) -> None:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            raise self.crashed(doing)
        self._in += chunk

    def _frame(self) -> bytes | None:
        buf = self._in
        if len(buf) < _HEADER.size:
            return None
        (n,) = _HEADER.unpack_from(buf)
        end = _HEADER.size + n
        if len(buf) < end:
            return None
        with memoryview(buf) as view:
            frame = view[_HEADER.size:end].tobytes()
        del buf[:end]
        return frame

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 400))
        lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines()
                 if ln.strip()]
        return f" ({lines[-1].strip()[:200]})" if lines else ""


def _widen(fd: int) -> None:
    """Give a pipe 1 MiB of buffer where the platform allows it: fewer wake-ups per message."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)
    except (ImportError, AttributeError, OSError):
        pass  # the default buffer works, in more pieces


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a killed child not exiting
        pass
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            f.close()


class WorkerChannel:
    """The child's side of the supervisor: one request in, one answer out, as frames.

    Constructing it turns core files off (a policy that overflows the native stack kills the
    child: no core file for that) and moves everything else that writes to fd 1 to stderr.
    """

    def __init__(self) -> None:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ImportError, ValueError, OSError):
            pass  # not available on this platform; the crash is still contained
        self._out = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)  # stray native writes to stdout must not corrupt the protocol
        sys.stdout = sys.stderr
        self._in = sys.stdin.buffer

    def receive(self) -> bytes | None:
        """The next message from the parent; ``None`` once the parent has closed the pipe."""
        head = self._in.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return None
        (n,) = _HEADER.unpack(head)
        data = self._in.read(n)
        return data if len(data) == n else None

    def send(self, data: bytes) -> None:
        """Answer the parent with one message."""
        self._out.write(_HEADER.pack(len(data)))
        self._out.write(data)
        self._out.flush()
