"""The demo's HTTP resources: one per feature of the chassis.

- ``/products``: a paginated sync resource over ``select()``, its query string a typed model
  (``with_query(ProductQuery)``, which also documents it); ``POST`` creates a product
  (``async def``) from a typed body (``with_body(ProductIn)``).
- ``/products/by-price``: keyset (cursor) pagination, cheapest first, on the price index.
- ``/products/<id>``: an ``async def`` resource on the pooled ``AsyncEngine``; ``abort(404)``.
  The route is ``<int32:product_id>``: an id beyond the 32-bit column is a 404 at the edge.
- ``/products/<id>/quote``: a typed query in, a model out (``UUID``, ``Decimal``, ``Enum``,
  ``datetime``).
- ``/relay``: calls the upstream service configured in ``DEMO_UPSTREAM_URL`` (never an address
  taken from the request) forwarding the operation id with ``outgoing_headers()``.

Every method's return annotation is what the OpenAPI document shows as its ``data``; input is
validated at the edge by the chassis (bounded path integers, NUL refused) and by the models
here, so nothing a client sends reaches the database unchecked.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypedDict

from flask import current_app
from flask_restful import abort
from pydantic import ValidationError
from sqlalchemy import select

from cst_chassis import HealthBody, get_operation_id, get_state, outgoing_headers
from cst_chassis.openapi import Created, error_statuses, type_adapter, with_body, with_query
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from examples.demo.database import get_database
from examples.demo.models import (
    Currency,
    Product,
    ProductIn,
    ProductJson,
    ProductQuery,
    Quote,
    QuoteQuery,
    product_json,
)

__all__ = [
    "UPSTREAM_CONFIG_KEY",
    "ProductDetail",
    "ProductList",
    "ProductQuote",
    "ProductsByPrice",
    "Relay",
    "RelayJson",
]

logger = logging.getLogger(__name__)

SORTS = {"id": (Product.id,), "price": (Product.price_cents, Product.id)}
UPSTREAM_TIMEOUT_SECONDS = 5.0
UPSTREAM_CONFIG_KEY = "DEMO_UPSTREAM_URL"
_HEALTH_BODY = type_adapter(HealthBody)


class ProductList(ApiPaginatedMixin, ApiResource):
    """``GET /products?offset=&limit=&q=&sort=id|price`` and ``POST /products``."""

    @with_query(ProductQuery)
    def get(self, query: ProductQuery) -> list[ProductJson]:
        """List products, filtered by name and sorted, a page at a time."""
        stmt = select(Product).order_by(*SORTS[query.sort])
        if query.q:
            stmt = stmt.where(Product.name.contains(query.q, autoescape=True))
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
        logger.info("reading product %d", product_id)
        async with get_database().async_sessions() as session:
            product = await session.get(Product, product_id)
        if product is None:
            abort(404, message=f"Product {product_id} does not exist")
        return product_json(product)


# Fixed demo rates from euro: a real service would read them from somewhere that changes.
RATES = {Currency.EUR: Decimal(1), Currency.USD: Decimal("1.0825"), Currency.GBP: Decimal("0.8431")}
QUOTE_VALIDITY = timedelta(minutes=15)
CENT = Decimal("0.01")


class ProductQuote(ApiResource):
    """``GET /products/<id>/quote?quantity=&currency=``: a typed query in, a model out."""

    @with_query(QuoteQuery)
    def get(self, query: QuoteQuery, product_id: int) -> Quote:
        """Quote a quantity of one product in a currency, valid for 15 minutes."""
        with get_database().sessions() as session:
            product = session.get(Product, product_id)
            if product is None:
                abort(404, message=f"Product {product_id} does not exist")
            created_at = product.created_at
        if created_at.tzinfo is None:  # SQLite returns times without their zone
            created_at = created_at.replace(tzinfo=UTC)
        unit_price = (Decimal(product.price_cents) / 100 * RATES[query.currency]).quantize(CENT)
        return Quote(
            quote_id=uuid.uuid4(),
            product_id=product_id,
            quantity=query.quantity,
            currency=query.currency,
            unit_price=unit_price,
            total=unit_price * query.quantity,
            product_created_at=created_at,
            valid_until=datetime.now(UTC) + QUOTE_VALIDITY,
        )


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
