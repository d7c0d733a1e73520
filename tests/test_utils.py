"""retry: the seed's semantics (exception or falsy result), sync and async, typed."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

from cst_chassis.utils import retry


class Flaky:
    def __init__(self) -> None:
        self.calls = 0

    @retry(delay=1)
    def call(self, argument: str) -> bool | float | int:
        self.calls += 1
        if argument == "tr":
            return True
        if argument == "null div":
            return 2 / 0
        return 0


def test_success_on_first_call_is_not_retried() -> None:
    flaky = Flaky()
    assert flaky.call("tr") is True
    assert flaky.calls == 1


@mock.patch("cst_chassis.utils.time.sleep", return_value=None)
def test_falsy_result_is_retried_then_returned(sleep: mock.Mock) -> None:
    flaky = Flaky()
    assert flaky.call("something_else") == 0
    assert flaky.calls == 3
    assert [c.args[0] for c in sleep.call_args_list] == [1, 2]


@mock.patch("cst_chassis.utils.time.sleep", return_value=None)
def test_exception_is_retried_then_raised(_: mock.Mock) -> None:
    flaky = Flaky()
    with pytest.raises(ZeroDivisionError):
        flaky.call("null div")
    assert flaky.calls == 3


def test_success_after_failures_returns_the_result() -> None:
    attempts: list[int] = []

    @retry(tries=4, delay=0)
    def eventually() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return "up"

    assert eventually() == "up"
    assert len(attempts) == 3


def test_async_functions_are_awaited_and_retried() -> None:
    attempts: list[int] = []

    @retry(tries=3, delay=0.001, back_off=2)
    async def fetch(x: int) -> int:
        attempts.append(x)
        await asyncio.sleep(0)
        if len(attempts) < 2:
            raise ConnectionError("down")
        return x * 2

    assert asyncio.run(fetch(21)) == 42
    assert attempts == [21, 21]


def test_async_retry_sleeps_with_asyncio() -> None:
    @retry(tries=2, delay=5)
    async def never() -> int:
        return 0

    async def main() -> int:
        with mock.patch("cst_chassis.utils.asyncio.sleep") as sleep:
            sleep.return_value = None

            async def no_wait(_: float) -> None:
                return None

            sleep.side_effect = no_wait
            result = await never()
            assert [c.args[0] for c in sleep.call_args_list] == [5]
            return result

    assert asyncio.run(main()) == 0


def test_retries_are_logged_on_the_custom_logger(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    logger = logging.getLogger("my.retry")

    @retry(tries=2, delay=0, custom_logger=logger)
    def fails() -> None:
        raise OSError("x")

    with pytest.raises(OSError):
        fails()
    assert [r.name for r in caplog.records] == ["my.retry"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"tries": 0}, "tries"), ({"delay": -1}, "delay"), ({"back_off": 0.5}, "back_off")],
)
def test_bad_arguments_are_rejected_naming_them(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        retry(**kwargs)  # type: ignore[arg-type]  # tries expects int; the test passes each key alone
