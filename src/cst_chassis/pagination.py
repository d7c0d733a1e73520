"""Offset/limit pagination over SQLAlchemy 2.0 ``select()`` (pagination issue)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, overload

__all__ = ["Page"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Sequence[T], Generic[T]):
    """One page of results; itself a ``Sequence[T]`` (iterate, ``len``, index).

    ``offset``/``limit`` describe the slice; ``has_next``/``has_prev`` say whether neighbours
    exist; ``total`` is set only when a count was asked for; ``next_cursor``/``prev_cursor`` are
    set in keyset mode.
    """

    items: Sequence[T]
    offset: int
    limit: int
    has_next: bool
    has_prev: bool
    total: int | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)
