"""``Page``: one page of results, the type every way of paging returns.

It lives alone, importing nothing else of the package, so that offset, keyset and the resource
mixin can all build one without importing each other.
"""

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

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or ``None`` when there is none."""
        return self.offset + self.limit if self.has_next else None

    @property
    def prev_offset(self) -> int | None:
        """The previous page's offset (``max(offset - limit, 0)`` as cst-micro-chassis) or ``None``.

        Past the end this is still one page back from the requested offset, not the last page.
        """
        return max(self.offset - self.limit, 0) if self.has_prev else None
