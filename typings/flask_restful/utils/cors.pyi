from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import ParamSpec

from flask import Response
from flask.typing import ResponseReturnValue

_P = ParamSpec("_P")

def crossdomain(
    # The runtime default (``None``) raises ``TypeError``: an origin is required.
    origin: str | Iterable[str],
    methods: Iterable[str] | None = None,
    headers: str | Iterable[str] | None = None,
    expose_headers: str | Iterable[str] | None = None,
    max_age: float | timedelta = 21600,
    attach_to_all: bool = True,
    automatic_options: bool = True,
    credentials: bool = False,
) -> Callable[[Callable[_P, ResponseReturnValue]], Callable[_P, Response]]: ...
