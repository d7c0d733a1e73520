"""Checked by mypy --strict: ``with_query``/``with_headers`` pass the model's type on.

``warn_unused_ignores`` is on, so each ``type: ignore`` below asserts that mypy still rejects the
line. The functions also run under pytest.
"""

from __future__ import annotations

from typing import assert_type

import pytest
from flask_restful import reqparse
from pydantic import BaseModel

from cst_chassis.openapi import with_args, with_headers, with_query
from cst_chassis.resources import ApiResource


class Search(BaseModel):
    q: str | None = None


parser = reqparse.RequestParser()


class Things(ApiResource):
    @with_query(Search)
    def get(self, query: Search) -> str | None:
        assert_type(query, Search)
        return query.q

    @with_args(parser)
    @with_query(Search)
    async def put(self, query: Search, args: reqparse.Namespace, thing_id: int) -> int:
        return thing_id


class Headers(BaseModel):
    x_tenant: str


class Reports(ApiResource):
    @with_headers(Headers)
    @with_query(Search)
    def get(self, query: Search, headers: Headers) -> str:
        assert_type(headers, Headers)
        return headers.x_tenant


class WrongModel(ApiResource):
    @with_query(Search)  # type: ignore[arg-type]  # the parameter must take the model
    def get(self, query: int) -> int:
        return query


def test_a_type_that_is_not_a_model_is_refused_by_mypy_and_at_run_time() -> None:
    with pytest.raises(TypeError, match="BaseModel"):

        class NotAModel(ApiResource):
            @with_query(int)  # type: ignore[type-var]  # a pydantic model, not any type
            def get(self, query: int) -> int:
                return query


def test_the_decorated_methods_keep_their_names() -> None:
    assert Things.get.__name__ == "get"
    assert Things.put.__name__ == "put"
