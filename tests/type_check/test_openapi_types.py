"""Checked by mypy --strict: user code on the OpenAPI decorators keeps its types.

``warn_unused_ignores`` is on, so each ``type: ignore`` below is an assertion that mypy still
rejects that line: a wrong body under ``Created[...]``, a wrong status, a parameter that does not
match the parsed input. The functions also run under pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypedDict, assert_type, get_type_hints

from flask_restful import reqparse
from pydantic import BaseModel

from cst_chassis.openapi import Accepted, Created, error_statuses, with_args, with_body
from cst_chassis.resources import ApiResource


class Body(TypedDict):
    name: str


class BodyIn(BaseModel):
    name: str


parser = reqparse.RequestParser()
parser.add_argument("q", location="args")


class Things(ApiResource):
    @with_body(BodyIn)
    def post(self, body: BodyIn) -> Created[Body]:
        return {"name": body.name}, 201

    @with_args(parser)
    @error_statuses(409)
    def get(self, args: reqparse.Namespace) -> list[Body]:
        return [{"name": str(args.q)}]

    @with_body(BodyIn)
    async def put(self, body: BodyIn, thing_id: int) -> Accepted[Body]:
        return {"name": f"{body.name}{thing_id}"}, 202


class WrongBody(ApiResource):
    def post(self) -> Created[Body]:
        return {"name": 1}, 201  # type: ignore[typeddict-item]  # the body is checked


class WrongStatus(ApiResource):
    def post(self) -> Created[Body]:
        return {"name": "x"}, 200  # type: ignore[return-value]  # so is the status


class WrongInput(ApiResource):
    @with_body(BodyIn)  # type: ignore[arg-type]  # the parameter must take the model
    def post(self, body: Body) -> Body:
        return body


def test_decorated_methods_keep_their_types() -> None:
    assert_type(Things.post, Callable[[Things], tuple[Body, Literal[201]]])
    assert_type(Things.get, Callable[[Things], list[Body]])
    # At run time the alias is the same tuple type, which is what the document reads.
    assert get_type_hints(Things.post)["return"] == tuple[Body, Literal[201]]
