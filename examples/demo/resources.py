"""The demo's HTTP resources: one per feature of the chassis.

- ``/products``: a paginated sync resource over ``select()``, its query string parsed by a
  reqparse ``RequestParser`` declared once with ``with_args`` (it also documents it); ``POST``
  creates a product (``async def``) from a typed body (``with_body(ProductIn)``).
- ``/products/by-price``: keyset (cursor) pagination, cheapest first, on the price index.
- ``/products/<id>``: an ``async def`` resource on the pooled ``AsyncEngine``; ``abort(404)``.
- ``/relay``: calls the upstream service configured in ``DEMO_UPSTREAM_URL`` (never an address
  taken from the request) forwarding the operation id with ``outgoing_headers()``.

Every method's return annotation is what the OpenAPI document shows as its ``data``; input is
validated here, at the edge, so nothing a client sends reaches the database unchecked.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import TypedDict, cast

from flask import current_app
from flask_restful import abort, reqparse
from pydantic import ValidationError
from sqlalchemy import select

from cst_chassis import HealthBody, get_operation_id, get_state, outgoing_headers
from cst_chassis.openapi import Created, error_statuses, type_adapter, with_args, with_body
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from examples.demo.database import get_database
from examples.demo.models import (
    INT4_MAX,
    NAME_MAX_LENGTH,
    Product,
    ProductIn,
    ProductJson,
    product_json,
    storable_text,
)

__all__ = [
    "UPSTREAM_CONFIG_KEY",
    "ProductDetail",
    "ProductList",
    "ProductsByPrice",
    "Relay",
    "RelayJson",
]

logger = logging.getLogger(__name__)

SORTS = {"id": (Product.id,), "price": (Product.price_cents, Product.id)}
UPSTREAM_TIMEOUT_SECONDS = 5.0
UPSTREAM_CONFIG_KEY = "DEMO_UPSTREAM_URL"
_HEALTH_BODY = type_adapter(HealthBody)


class SearchText:
    """A reqparse ``type`` for free text: storable (no NUL, no lone surrogate) and bounded.

    ``json_schema`` is what ``with_args`` shows in the document for it.
    """

    json_schema = {
        "type": "string",
        "maxLength": NAME_MAX_LENGTH,
        "pattern": r"^[^\x00]*$",
        "description": "Only products whose name contains this text.",
    }

    def __call__(self, value: str) -> str:
        if len(value) > NAME_MAX_LENGTH:
            raise ValueError(f"must be at most {NAME_MAX_LENGTH} characters")
        return storable_text(value)


list_arguments = reqparse.RequestParser()
# No ``help=``: reqparse would answer it instead of the reason a value was refused.
list_arguments.add_argument("q", type=SearchText(), location="args")
list_arguments.add_argument("sort", choices=tuple(SORTS), default="id", location="args")


class ProductList(ApiPaginatedMixin, ApiResource):
    """``GET /products?offset=&limit=&q=&sort=id|price`` and ``POST /products``."""

    @with_args(list_arguments)
    def get(self, args: reqparse.Namespace) -> list[ProductJson]:
        """List products, filtered by name and sorted, a page at a time."""
        stmt = select(Product).order_by(*SORTS[args.sort])
        if args.q:
            stmt = stmt.where(Product.name.contains(args.q, autoescape=True))
        with get_database().sessions() as session:
            page = self.get_paginated_query_result(stmt, session=session)
            logger.info("listing %d products from offset %d", len(page), page.offset)
            return [product_json(product) for product in page]

    @with_body(ProductIn)
    async def post(self, product_in: ProductIn) -> Created[ProductJson]:
        """Add a product to the catalogue."""
        product = Product(name=product_in.name, price_cents=product_in.price_cents)
        async with get_database().async_sessions() as session, session.begin():
            session.add(product)
        logger.info("created product %d", product.id)
        return product_json(product), 201


class ProductsByPrice(ApiPaginatedMixin, ApiResource):
    """``GET /products/by-price?limit=&cursor=``: keyset pagination, cheapest first.

    Each page costs the same at any depth (``WHERE (price_cents, id) > (...)`` on the
    ``ix_products_price_cents_id`` index), and products added meanwhile never shift the pages.
    """

    pagination_mode = "keyset"

    def get(self) -> list[ProductJson]:
        """List products cheapest first, a page at a time (cursor pagination)."""
        stmt = select(Product).order_by(Product.price_cents, Product.id)
        with get_database().sessions() as session:
            page = self.get_paginated_query_result(stmt, session)
            return [product_json(product) for product in page]


class ProductDetail(ApiResource):
    """``GET /products/<id>``, read through the pooled ``AsyncEngine``."""

    async def get(self, product_id: int) -> ProductJson:
        """Read one product."""
        if product_id > INT4_MAX:
            # Larger ids cannot exist (an integer column) and would overflow the query.
            self.add_error(f"product_id must be at most {INT4_MAX}", path="product_id")
            # With an error recorded, the envelope carries the errors and drops this value.
            return cast(ProductJson, None)
        logger.info("reading product %d", product_id)
        async with get_database().async_sessions() as session:
            product = await session.get(Product, product_id)
        if product is None:
            abort(404, message=f"Product {product_id} does not exist")
        return product_json(product)


class RelayJson(TypedDict):
    """What ``/relay`` answers: the upstream's status and whether it saw our operation id."""

    upstream: str
    status: int
    upstream_operation_id: str | None
    forwarded: bool
    body: HealthBody | None


class Relay(ApiResource):
    """``GET /relay``: call the configured upstream service with ``outgoing_headers()``."""

    @error_statuses(502, 503)
    def get(self) -> RelayJson:
        """Call the upstream's health endpoint, forwarding this request's operation id.

        The upstream is ``DEMO_UPSTREAM_URL`` (configuration, never the request): 503 when it
        is not configured, 502 when it does not answer.
        """
        url = current_app.config.get(UPSTREAM_CONFIG_KEY)
        if not isinstance(url, str) or not url:
            abort(503, message=f"No upstream service is configured ({UPSTREAM_CONFIG_KEY})")
        headers = {"Accept": "application/json", **outgoing_headers()}
        call = urllib.request.Request(url, headers=headers)
        logger.info("calling upstream %s", url)
        id_header = get_state().config.operation_id_header
        try:
            with urllib.request.urlopen(call, timeout=UPSTREAM_TIMEOUT_SECONDS) as response:
                status: int = response.status
                upstream_id: str | None = response.headers.get(id_header)
                raw: bytes = response.read()
        except urllib.error.HTTPError as exc:  # a 4xx/5xx answer is still an answer
            with exc:
                status, upstream_id, raw = exc.code, exc.headers.get(id_header), exc.read()
        except OSError as exc:  # URLError, timeouts, refused connections
            logger.warning("upstream %s unreachable: %s", url, type(exc).__name__)
            abort(502, message="The upstream service did not answer")
        try:
            body: HealthBody | None = _HEALTH_BODY.validate_json(raw)
        except ValidationError:  # not a chassis health body: report the status alone
            body = None
        return {
            "upstream": url,
            "status": status,
            "upstream_operation_id": upstream_id,
            "forwarded": upstream_id is not None and upstream_id == get_operation_id(),
            "body": body,
        }
