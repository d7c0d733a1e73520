"""The demo's HTTP resources: one per feature of the chassis.

- ``/products``: a paginated sync resource over ``select()``, with filters kept in the links,
  and ``add_error`` validation of the query string; ``POST`` creates a product (``async def``).
- ``/products/by-price``: keyset (cursor) pagination, cheapest first, on the price index.
- ``/products/<id>``: an ``async def`` resource on the pooled ``AsyncEngine``; ``abort(404)``.
- ``/relay``: calls another service's ``/status`` (by default this one) forwarding the operation
  id with ``outgoing_headers()``, so both services log the same id.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any, TypedDict

from flask import current_app, request
from flask_restful import abort
from sqlalchemy import select

from cst_chassis import get_operation_id, get_state, outgoing_headers
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from examples.demo.database import get_database
from examples.demo.models import NAME_MAX_LENGTH, Product, ProductJson, product_json

__all__ = ["ProductDetail", "ProductList", "ProductsByPrice", "Relay", "RelayJson"]

logger = logging.getLogger(__name__)

SORTS = {"id": (Product.id,), "price": (Product.price_cents, Product.id)}
UPSTREAM_TIMEOUT_SECONDS = 5.0


class ProductList(ApiPaginatedMixin, ApiResource):
    """``GET /products?offset=&limit=&q=&sort=id|price`` and ``POST /products``."""

    def get(self) -> list[ProductJson] | None:
        sort = request.args.get("sort", "id")
        if sort not in SORTS:
            self.add_error(f"sort must be one of: {', '.join(SORTS)}", path="sort")
            return None
        stmt = select(Product).order_by(*SORTS[sort])
        search = request.args.get("q")
        if search:
            stmt = stmt.where(Product.name.contains(search, autoescape=True))
        with get_database().sessions() as session:
            page = self.get_paginated_query_result(stmt, session=session)
            logger.info("listing %d products from offset %d", len(page), page.offset)
            return [product_json(product) for product in page]

    async def post(self) -> tuple[ProductJson | None, int]:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            self.add_error("The body must be a JSON object")
            return None, 400
        name = payload.get("name")
        price_cents = payload.get("price_cents")
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX_LENGTH:
            self.add_error(
                f"name must be a non-empty string of at most {NAME_MAX_LENGTH} characters",
                path="name",
            )
        if not isinstance(price_cents, int) or isinstance(price_cents, bool) or price_cents < 0:
            self.add_error("price_cents must be a non-negative integer", path="price_cents")
        if self.errors:
            return None, 400
        assert isinstance(name, str) and isinstance(price_cents, int)  # checked just above
        product = Product(name=name.strip(), price_cents=price_cents)
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
        stmt = select(Product).order_by(Product.price_cents, Product.id)
        with get_database().sessions() as session:
            page = self.get_paginated_query_result(stmt, session)
            return [product_json(product) for product in page]


class ProductDetail(ApiResource):
    """``GET /products/<id>``, read through the pooled ``AsyncEngine``."""

    async def get(self, product_id: int) -> ProductJson:
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
    body: Any


def upstream_status_url() -> str:
    """``DEMO_UPSTREAM_URL`` from the app config, else this server's own ``/status``.

    The server's address comes from the WSGI environ (the socket it listens on), not from the
    client's ``Host`` header, so a client cannot point the call elsewhere.
    """
    configured = current_app.config.get("DEMO_UPSTREAM_URL")
    if isinstance(configured, str) and configured:
        return configured
    environ = request.environ
    return f"http://{environ['SERVER_NAME']}:{environ['SERVER_PORT']}/status"


class Relay(ApiResource):
    """``GET /relay``: call another service with ``outgoing_headers()``."""

    def get(self) -> tuple[RelayJson | None, int]:
        url = upstream_status_url()
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
            self.add_error("The upstream service did not answer")
            return None, 502
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        relay: RelayJson = {
            "upstream": url,
            "status": status,
            "upstream_operation_id": upstream_id,
            "forwarded": upstream_id is not None and upstream_id == get_operation_id(),
            "body": body,
        }
        return relay, 200
