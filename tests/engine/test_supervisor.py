"""The child-process supervisor both crash-tolerant engines run on (cortex_trust/engine/_supervisor.py).

A real child (a fresh interpreter speaking :class:`WorkerChannel`) is started, asked, starved,
crashed and killed through :class:`WorkerProcess`; every failure must come out as
``EngineTimeout`` or ``EngineError`` with the child gone, and the handle must start a fresh child
afterwards.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator

import pytest

from cortex_trust.engine import WorkerProcess
from cortex_trust.errors import EngineError, EngineTimeout

CHILD = """
import os, sys, time, signal
from cortex_trust.engine import WorkerChannel
channel = WorkerChannel()
init = channel.receive()
if init == b"refuse":
    sys.exit(0)
if init != b"mute":
    channel.send(b"ready:" + init)
while (message := channel.receive()) is not None:
    command, _, argument = message.partition(b" ")
    if command == b"echo":
        channel.send(argument)
    elif command == b"sleep":
        time.sleep(float(argument))
        channel.send(b"late")
    elif command == b"segv":
        sys.stderr.write("first line\\nthe last words\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    elif command == b"exit":
        os._exit(int(argument))
    elif command == b"noise":
        print("printed by the child")
        sys.stdout.flush()
        os.write(1, b"\\x00\\x00\\x00\\x05junk")
        channel.send(b"clean")
    elif command == b"limits":
        import resource
        channel.send(repr((resource.getrlimit(resource.RLIMIT_CORE), sys.path)).encode())
"""


@pytest.fixture
def child() -> Iterator[WorkerProcess]:
    worker = WorkerProcess(("-c", CHILD))
    worker.start(b"hello", timeout=60)
    assert worker.await_ready() == b"ready:hello" and worker.ready
    yield worker
    worker.stop()


def test_requests_are_answered_in_order_and_large_messages_pass(child: WorkerProcess) -> None:
    big = bytes(range(256)) * (8 * 4096)  # 8 MiB: many times a pipe's buffer, both ways
    assert child.request(b"echo " + big, timeout=60, doing="echoing") == big
    assert child.request(b"echo one", timeout=10, doing="echoing") == b"one"
    assert child.request(b"echo", timeout=10, doing="echoing") == b""


def test_stray_output_of_the_child_does_not_corrupt_answers(child: WorkerProcess) -> None:
    assert child.request(b"noise", timeout=10, doing="listening") == b"clean"
    assert child.request(b"echo after", timeout=10, doing="echoing") == b"after"


def test_the_child_writes_no_core_file_and_never_imports_from_the_working_directory(
        child: WorkerProcess) -> None:
    core, path = ast.literal_eval(child.request(b"limits", timeout=10, doing="asking").decode())
    assert core == (0, 0)
    assert "" not in path and "." not in path


def test_a_child_past_its_deadline_is_killed_and_replaced(child: WorkerProcess) -> None:
    proc = child.proc
    assert proc is not None
    started = time.monotonic()
    with pytest.raises(EngineTimeout) as e:
        child.request(b"sleep 30", timeout=0.5, doing="sleeping")
    assert time.monotonic() - started < 10
    assert e.value.message == "the policy engine timed out after 0.5s while sleeping"
    assert e.value.advice
    assert proc.poll() is not None and not child.alive and child.proc is None
    child.start(b"again", timeout=60)  # replace: a fresh child on the same handle
    assert child.await_ready() == b"ready:again"
    assert child.request(b"echo back", timeout=10, doing="echoing") == b"back"


def test_a_crash_names_the_signal_and_the_last_line_of_stderr(child: WorkerProcess) -> None:
    with pytest.raises(EngineError) as e:
        child.request(b"segv", timeout=30, doing="crashing")
    assert not isinstance(e.value, EngineTimeout)
    assert e.value.message.startswith("the policy engine crashed (signal 11, SIGSEGV) while crashing;")
    assert e.value.message.endswith("(the last words)")
    assert not child.alive and child.proc is None


def test_an_exit_names_the_status(child: WorkerProcess) -> None:
    with pytest.raises(EngineError, match=r"exited unexpectedly \(status 3\) while leaving"):
        child.request(b"exit 3", timeout=30, doing="leaving")


def test_a_child_that_does_not_answer_its_init_times_out() -> None:
    worker = WorkerProcess(("-c", CHILD))
    worker.start(b"mute", timeout=1.0)
    with pytest.raises(EngineTimeout, match="while loading the policies"):
        worker.await_ready()
    assert not worker.alive and not worker.ready


def test_a_child_that_exits_instead_of_answering_its_init_is_a_crash() -> None:
    worker = WorkerProcess(("-c", CHILD))
    worker.start(b"refuse", timeout=60)
    with pytest.raises(EngineError, match=r"exited unexpectedly \(status 0\) while loading"):
        worker.await_ready()


def test_waiting_on_several_children_without_blocking_on_one() -> None:
    """The pool's way: send to each, wait on all, pump each; a crash surfaces from pump()."""
    fast, slow, doomed = (WorkerProcess(("-c", CHILD)) for _ in range(3))
    try:
        for w in (fast, slow, doomed):
            w.start(b"x", timeout=60)
        pending = {fast, slow, doomed}
        while pending:  # the ready handshakes, in whatever order they come
            WorkerProcess.wait(pending, 60)
            pending -= {w for w in pending if w.pump(doing="loading") is not None}
        slow.send(b"sleep 30")
        doomed.send(b"exit 7")
        fast.send(b"echo " + b"y" * (4 << 20))  # larger than the pipe: goes out while waiting
        answers: dict[str, bytes] = {}
        crash: EngineError | None = None
        deadline = time.monotonic() + 60
        while ("fast" not in answers or crash is None) and time.monotonic() < deadline:
            WorkerProcess.wait([w for w in (fast, slow, doomed) if w.alive], 1.0)
            frame = fast.pump(doing="echoing")
            if frame is not None:
                answers["fast"] = frame
            if crash is None and doomed.proc is not None:
                try:
                    doomed.pump(doing="leaving")
                except EngineError as e:
                    crash = e
            assert slow.pump(doing="sleeping") is None
        assert answers == {"fast": b"y" * (4 << 20)}
        assert crash is not None and "exited unexpectedly (status 7) while leaving" in crash.message
        assert slow.alive  # still working: only the caller's deadline ends it
        timeout = slow.timed_out(30, "sleeping")
        assert isinstance(timeout, EngineTimeout) and not slow.alive
    finally:
        for w in (fast, slow, doomed):
            w.stop()
