"""CheckSlot and Ticket with hand-made futures: no check runs, no clock is waited on."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest

from cst_chassis import _health_runner
from cst_chassis._health_runner import CheckSlot


class Starts:
    """A ``start`` callable that hands out futures the test completes itself."""

    def __init__(self) -> None:
        self.futures: list[Future[Any]] = []

    def __call__(self) -> Future[Any]:
        future: Future[Any] = Future()
        self.futures.append(future)
        return future


def test_a_poll_of_an_idle_check_starts_one_run() -> None:
    start = Starts()
    ticket = CheckSlot().poll(60, 0, start)
    assert len(start.futures) == 1
    assert ticket.future is start.futures[0]
    assert ticket.deadline == ticket.started_at + 60


def test_polls_during_a_run_within_its_deadline_join_it() -> None:
    slot, start = CheckSlot(), Starts()
    first = slot.poll(60, 0, start)
    joined = [slot.poll(60, 0, start) for _ in range(5)]
    assert len(start.futures) == 1
    assert {ticket.future for ticket in joined} == {first.future}
    assert {ticket.deadline for ticket in joined} == {first.deadline}


def test_concurrent_polls_share_one_run() -> None:
    slot, start = CheckSlot(), Starts()
    barrier = threading.Barrier(6, timeout=30)
    futures: list[Future[Any]] = []
    lock = threading.Lock()

    def poll() -> None:
        barrier.wait()
        ticket = slot.poll(60, 0, start)
        with lock:
            futures.append(ticket.future)

    threads = [threading.Thread(target=poll) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(start.futures) == 1
    assert futures == start.futures * 6


def test_an_overdue_run_is_reported_at_once_and_not_started_again() -> None:
    slot, start = CheckSlot(), Starts()
    slot.poll(0, 0, start)  # a deadline of "now": the run is overdue from the next poll on
    overdue = slot.poll(0, 0, start)
    assert len(start.futures) == 1
    assert overdue.future is start.futures[0]
    overdue.wait()  # returns at once: the deadline has passed, the run is still in flight
    assert not overdue.future.done()
    assert overdue.duration() >= 0


def test_a_finished_run_is_not_reused_without_a_cache() -> None:
    slot, start = CheckSlot(), Starts()
    slot.poll(60, 0, start)
    start.futures[0].set_result(True)
    second = slot.poll(60, 0, start)
    assert len(start.futures) == 2
    assert second.future is start.futures[1]


def test_a_finished_run_is_reused_within_the_cache_ttl() -> None:
    slot, start = CheckSlot(), Starts()
    first = slot.poll(60, 3600, start)
    start.futures[0].set_result(True)
    cached = slot.poll(60, 3600, start)
    assert len(start.futures) == 1
    assert cached.future is first.future
    assert cached.deadline < first.deadline  # answered now, not after a wait
    assert cached.duration() == first.duration()  # the finished run's own duration


def test_a_failed_run_is_reused_within_the_cache_ttl_too() -> None:
    slot, start = CheckSlot(), Starts()
    slot.poll(60, 3600, start)
    start.futures[0].set_exception(RuntimeError("down"))
    assert slot.poll(60, 3600, start).future.exception() is not None
    assert len(start.futures) == 1


def test_a_start_that_raises_is_a_failed_run_not_an_error() -> None:
    def start() -> Future[Any]:
        raise RuntimeError("can't start new thread")

    ticket = CheckSlot().poll(60, 0, start)
    assert ticket.future.done()
    assert isinstance(ticket.future.exception(), RuntimeError)
    ticket.wait()


def test_ticket_wait_returns_when_the_run_ends() -> None:
    slot, start = CheckSlot(), Starts()
    ticket = slot.poll(3600, 0, start)
    finisher = threading.Thread(target=lambda: start.futures[0].set_result(True))
    finisher.start()
    ticket.wait()  # would block for an hour if the result did not wake it
    finisher.join()
    assert ticket.future.result() is True
    assert ticket.duration() >= 0


class FakeClock:
    """``time`` for the runner: ``monotonic()`` is what the test sets, nothing is waited on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_health_runner, "time", fake)
    return fake


def test_after_a_run_failed_at_its_deadline_polls_answer_at_once_while_the_next_runs(
    clock: FakeClock,
) -> None:
    # Issue 25, item 1: an async check cancelled at the timeout fails at its deadline run after
    # run; joining each new run made every poll hold a server thread for the whole timeout.
    slot, start = CheckSlot(), Starts()
    slot.poll(10, 0, start)
    clock.now += 10
    start.futures[0].set_exception(TimeoutError())  # cancelled at its deadline
    starting = slot.poll(10, 0, start)  # starts the next run, does not wait for it
    joining = slot.poll(10, 0, start)  # that run is in flight: still no wait
    assert len(start.futures) == 2
    for ticket in (starting, joining):
        assert ticket.future is start.futures[0]
        assert ticket.deadline == clock.now
        assert isinstance(ticket.future.exception(), TimeoutError)
    clock.now += 1
    start.futures[1].set_result(True)  # the database is back: polls wait for runs again
    ticket = slot.poll(10, 0, start)
    assert ticket.future is start.futures[2]
    assert ticket.deadline == clock.now + 10


def test_after_a_run_failed_fast_polls_wait_for_the_next_run(clock: FakeClock) -> None:
    # Connection refused: the next run is as quick, so waiting for it shows a recovery at once.
    slot, start = CheckSlot(), Starts()
    slot.poll(10, 0, start)
    clock.now += 0.01
    start.futures[0].set_exception(ConnectionRefusedError())
    ticket = slot.poll(10, 0, start)
    assert ticket.future is start.futures[1]
    assert ticket.deadline == clock.now + 10
    assert slot.poll(10, 0, start).future is start.futures[1]  # joined, one run in flight
