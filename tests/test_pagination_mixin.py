"""ApiPaginatedMixin over HTTP: seed-exact links, kept filters, bad input, totals, async."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from flask import Flask, request
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from cst_chassis import ChassisApi, async_bridge
from cst_chassis.errors import MissingSessionError
from cst_chassis.pagination import MAX_OFFSET
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from tests.conftest import AppFactory, Database
from tests.pagination_support import (
    ODD_CATEGORY,
    ROWS,
    LegacyProduct,
    Product,
    captured_statements,
    db,
    seed,
)

Source = Literal["legacy_query", "select_default_session", "select_session", "async_session"]
SOURCES: list[Source] = [
    "legacy_query",
    "select_default_session",
    "select_session",
    "async_session",
]
BASE = "http://localhost/products"


def _serialize(products: Any) -> list[dict[str, Any]]:
    return [{"id": p.id, "name": p.name} for p in products]


def _filtered(stmt: Any, model: Any = Product) -> Any:
    categories = request.args.getlist("category")
    if categories:
        stmt = stmt.filter(model.category.in_(categories))
    return stmt


def _resource(source: Source, engine: sa.Engine, with_total: bool) -> type[ApiResource]:
    """The products resource, reading through ``source``; filters by ``?category=``."""
    if source == "legacy_query":

        class LegacyProducts(ApiPaginatedMixin, ApiResource):
            pagination_with_total = with_total

            def get(self) -> Any:
                # The seed README's form, unchanged.
                products = self.get_paginated_query_result(
                    _filtered(LegacyProduct.query.order_by(LegacyProduct.id.asc()), LegacyProduct)
                )
                return _serialize(products), 200

            def post(self) -> Any:
                return "created", 201

        return LegacyProducts

    if source == "select_default_session":

        class DefaultSessionProducts(ApiPaginatedMixin, ApiResource):
            pagination_with_total = with_total

            def get(self) -> Any:
                page = self.get_paginated_query_result(
                    _filtered(sa.select(Product).order_by(Product.id))
                )
                return _serialize(page)

        return DefaultSessionProducts

    if source == "select_session":

        class SessionProducts(ApiPaginatedMixin, ApiResource):
            pagination_with_total = with_total

            def get(self) -> Any:
                with Session(engine) as session:
                    page = self.get_paginated_query_result(
                        _filtered(sa.select(Product).order_by(Product.id)), session
                    )
                    return _serialize(page)

        return SessionProducts

    raise AssertionError(source)


@contextlib.contextmanager
def products_client(
    make_app: AppFactory,
    database: Database,
    source: Source = "select_session",
    *,
    rows: int = ROWS,
    with_total: bool = False,
    wrap: Callable[[Flask], None] | None = None,
    **config: Any,
) -> Iterator[tuple[FlaskClient, sa.Engine]]:
    """A fresh app serving ``/products`` from ``rows`` seeded rows; yields (client, engine)."""
    engine = database.engine()
    seed(engine, rows)
    app = make_app(
        db=db,
        SQLALCHEMY_DATABASE_URI=database.url,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": database.connect_args},
        **config,
    )
    db.init_app(app)
    async_engine = None
    if source == "async_session":
        async_engine = database.async_engine()
        make_session = async_sessionmaker(async_engine)

        class AsyncProducts(ApiPaginatedMixin, ApiResource):
            pagination_with_total = with_total

            async def get(self) -> Any:
                async with make_session() as session:
                    page = await self.get_paginated_query_result_async(
                        _filtered(sa.select(Product).order_by(Product.id)), session
                    )
                return _serialize(page)

        resource: type[ApiResource] = AsyncProducts
    else:
        resource = _resource(source, engine, with_total)
    ChassisApi(app).add_resource(resource, "/products")
    if wrap is not None:
        wrap(app)
    try:
        yield app.test_client(), engine
    finally:
        with app.app_context():
            db.engine.dispose()
        if async_engine is not None:
            async_bridge.run_coroutine(async_engine.dispose)


def _ids(response: Any) -> list[int]:
    return [item["id"] for item in response.get_json()["data"]]


def _links(response: Any) -> tuple[str | None, str | None]:
    pagination = response.get_json()["meta"]["pagination"]
    return pagination["next"], pagination["prev"]


# -- walking and exact links -----------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_walking_the_next_links_gives_the_full_ordered_result(
    make_app: AppFactory, database: Database, source: Source
) -> None:
    with products_client(make_app, database, source) as (client, _):
        ids: list[int] = []
        url: str | None = "/products"
        pages = 0
        while url is not None:
            response = client.get(url)
            assert response.status_code == 200
            ids.extend(_ids(response))
            url, _ = _links(response)
            pages += 1
    assert ids == list(range(1, ROWS + 1))
    assert pages == 5


@pytest.mark.parametrize("source", SOURCES)
def test_links_match_the_seed_strings_exactly(
    make_app: AppFactory, database: Database, source: Source
) -> None:
    with products_client(make_app, database, source) as (client, _):
        first = client.get("/products")
        second = client.get("/products?offset=25&limit=25")
        last = client.get("/products?offset=100&limit=25")
    assert _links(first) == (f"{BASE}?offset=25&limit=25", None)
    assert _links(second) == (f"{BASE}?offset=50&limit=25", f"{BASE}?offset=0&limit=25")
    assert _links(last) == (None, f"{BASE}?offset=75&limit=25")
    assert (len(_ids(first)), len(_ids(last))) == (25, 7)


def test_an_exact_multiple_of_the_page_size_has_no_phantom_next_page(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database, rows=100) as (client, _):
        last = client.get("/products?offset=75")
    assert len(_ids(last)) == 25
    assert _links(last) == (None, f"{BASE}?offset=50&limit=25")


def test_an_empty_table_gives_empty_data_and_no_links(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database, rows=0) as (client, _):
        response = client.get("/products")
    assert response.status_code == 200
    assert response.get_json()["data"] == []
    assert _links(response) == (None, None)
    assert "Link" not in response.headers


def test_an_offset_past_the_end_is_empty_with_prev_one_page_back(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products?offset=500&limit=20")
    assert response.status_code == 200
    assert response.get_json()["data"] == []
    assert _links(response) == (None, f"{BASE}?offset=480&limit=20")


def test_the_largest_offset_is_accepted(make_app: AppFactory, database: Database) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get(f"/products?offset={MAX_OFFSET}")
    assert response.status_code == 200
    assert _links(response) == (None, f"{BASE}?offset={MAX_OFFSET - 25}&limit=25")


def test_a_non_default_limit_is_kept_in_the_links(make_app: AppFactory, database: Database) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products?limit=10&offset=5")
    assert _ids(response) == list(range(6, 16))
    assert _links(response) == (f"{BASE}?offset=15&limit=10", f"{BASE}?offset=0&limit=10")


def test_the_link_header_mirrors_the_body_links(make_app: AppFactory, database: Database) -> None:
    with products_client(make_app, database) as (client, _):
        middle = client.get("/products?offset=25")
        first = client.get("/products")
    assert middle.headers.getlist("Link") == [
        f'<{BASE}?offset=50&limit=25>; rel="next", <{BASE}?offset=0&limit=25>; rel="prev"'
    ]
    assert first.headers.getlist("Link") == [f'<{BASE}?offset=25&limit=25>; rel="next"']


# -- kept arguments, proxies --------------------------------------------------------------------


def test_other_arguments_are_kept_encoded_in_order_with_every_value(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get(
            "/products",
            query_string=[("category", ODD_CATEGORY), ("tag", "x"), ("tag", "y&z"), ("limit", "5")],
        )
    kept = "category=a%26b+c%2F%C3%A4&tag=x&tag=y%26z"
    assert _links(response) == (f"{BASE}?{kept}&offset=5&limit=5", None)
    assert response.headers["Link"] == f'<{BASE}?{kept}&offset=5&limit=5>; rel="next"'


def test_following_links_keeps_filtering_by_the_kept_arguments(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):
        ids: list[int] = []
        response = client.get("/products", query_string={"category": ODD_CATEGORY})
        while True:
            ids.extend(_ids(response))
            next_url, _ = _links(response)
            if next_url is None:
                break
            response = client.get(next_url)
    assert ids == list(range(2, ROWS + 1, 2))


def test_links_honour_the_forwarded_scheme_host_and_prefix_behind_proxyfix(
    make_app: AppFactory, database: Database
) -> None:
    def behind_proxy(app: Flask) -> None:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app

    with products_client(make_app, database, wrap=behind_proxy) as (client, _):
        response = client.get(
            "/products?offset=25",
            headers={
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "api.example.com",
                "X-Forwarded-Prefix": "/shop",
            },
        )
    base = "https://api.example.com/shop/products"
    assert _links(response) == (f"{base}?offset=50&limit=25", f"{base}?offset=0&limit=25")


def test_a_non_ascii_path_gives_uri_links_in_body_and_header(
    make_app: AppFactory, database: Database
) -> None:
    engine = database.engine()
    seed(engine)
    app = make_app()

    class Products(ApiPaginatedMixin, ApiResource):
        def get(self, name: str) -> Any:
            with Session(engine) as session:
                return _serialize(
                    self.get_paginated_query_result(
                        sa.select(Product).order_by(Product.id), session
                    )
                )

    ChassisApi(app).add_resource(Products, "/shops/<name>/products")
    response = app.test_client().get("/shops/caf%C3%A9%20%3E/products")
    url = "http://localhost/shops/caf%C3%A9%20%3E/products?offset=25&limit=25"
    assert response.status_code == 200
    assert _links(response) == (url, None)
    assert response.headers["Link"] == f'<{url}>; rel="next"'


@pytest.mark.parametrize("host", ["a>b", 'a"b', "a b", "a<b>,c"])
def test_a_hostile_host_header_cannot_break_the_link_header(
    make_app: AppFactory, database: Database, host: str
) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products?offset=25", environ_overrides={"HTTP_HOST": host})
    assert response.status_code == 200
    links = re.fullmatch(
        r'<([^<>"\s]*)>; rel="next", <([^<>"\s]*)>; rel="prev"', response.headers["Link"]
    )
    assert links is not None, response.headers["Link"]
    assert list(links.groups()) == list(_links(response))


# -- hosts and caches (issue 26, item 4) ------------------------------------------------------


@pytest.mark.parametrize("key", ["CST_TRUSTED_HOSTS", "TRUSTED_HOSTS"])
def test_with_trusted_hosts_an_untrusted_host_is_a_400_before_any_query_or_link(
    make_app: AppFactory, database: Database, key: str
) -> None:
    # Flask 3.1 checks its own TRUSTED_HOSTS, Flask 2.3 has none: the chassis checks both keys
    # itself, so this holds on both lines CI runs.
    config: dict[str, Any] = {key: ["api.example.com"]}
    with (
        products_client(make_app, database, **config) as (client, engine),
        captured_statements(engine) as statements,
    ):
        response = client.get("/products", headers={"Host": "evil.example"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errors"] == [
        {"message": "The Host header names a host this service does not serve", "path": "Host"}
    ]
    assert "evil" not in response.get_data(as_text=True)
    assert "Link" not in response.headers
    assert statements == []


def test_with_trusted_hosts_a_trusted_host_and_its_port_get_their_links(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database, CST_TRUSTED_HOSTS=".example.com") as (client, _):
        response = client.get("/products", headers={"Host": "api.example.com:8443"})
    assert response.status_code == 200
    base = "http://api.example.com:8443/products"
    assert _links(response) == (f"{base}?offset=25&limit=25", None)


def test_with_trusted_hosts_probes_addressed_by_ip_still_answer(
    make_app: AppFactory, database: Database
) -> None:
    # kubelet and Prometheus name the pod's address in Host, not the public name.
    with products_client(make_app, database, CST_TRUSTED_HOSTS="api.example.com") as (client, _):
        for path in ("/livez", "/readyz", "/status"):
            response = client.get(path, headers={"Host": "10.1.2.3:8000"})
            assert response.status_code == 200, path
        assert client.get("/products", headers={"Host": "10.1.2.3:8000"}).status_code == 400


def test_trusted_hosts_apply_to_the_forwarded_host_behind_proxyfix(
    make_app: AppFactory, database: Database
) -> None:
    def behind_proxy(app: Flask) -> None:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app

    with products_client(
        make_app, database, wrap=behind_proxy, CST_TRUSTED_HOSTS="api.example.com"
    ) as (client, _):
        forged = client.get("/products", headers={"X-Forwarded-Host": "evil.example"})
        honest = client.get("/products", headers={"X-Forwarded-Host": "api.example.com"})
    assert forged.status_code == 400
    assert honest.status_code == 200


def test_a_paginated_response_may_not_be_stored_by_a_shared_cache(
    make_app: AppFactory, database: Database
) -> None:
    # Its links name the request's host: a shared cache must not serve them to another host.
    with products_client(make_app, database) as (client, _):
        response = client.get("/products")
    assert response.headers.getlist("Cache-Control") == ["private"]


def test_a_resource_chooses_its_own_cache_control(make_app: AppFactory, database: Database) -> None:
    engine = database.engine()
    seed(engine)
    app = make_app()

    class Cached(ApiPaginatedMixin, ApiResource):
        pagination_cache_control = "public, max-age=60"

        def get(self) -> Any:
            with Session(engine) as session:
                stmt = sa.select(Product).order_by(Product.id)
                return _serialize(self.get_paginated_query_result(stmt, session))

    ChassisApi(app).add_resource(Cached, "/products")
    response = app.test_client().get("/products")
    assert response.headers.getlist("Cache-Control") == ["public, max-age=60"]


# -- bad input ------------------------------------------------------------------------------

BAD_OFFSETS = [
    "-1",
    "abc",
    "1.5",
    "+5",
    " 5",
    "5 ",
    "5\n",
    "\t5",
    "0x10",
    "1e3",
    "1_0",
    "",
    "\x00",
    "5\x00",
    "٣",
    "²",
    "\uff15",  # fullwidth digit five
    str(MAX_OFFSET + 1),
    "9" * 20,
    "1" + "0" * 5000,
]
BAD_LIMITS = ["0", "-1", "101", "1.5", "+5", " 5", "0x10", "", "\x00", "٣", "9" * 30]


def test_every_bad_offset_or_limit_is_a_400_naming_it_and_runs_no_query(
    make_app: AppFactory, database: Database
) -> None:
    cases = [[("offset", value)] for value in BAD_OFFSETS]
    cases += [[("limit", value)] for value in BAD_LIMITS]
    cases += [[("offset", "0"), ("offset", "25")], [("limit", "5"), ("limit", "5")]]
    with products_client(make_app, database) as (client, engine):
        for case in cases:
            with captured_statements(engine) as statements:
                response = client.get("/products", query_string=case)
            body = response.get_json()
            assert response.status_code == 400, case
            assert set(body) == {"meta", "errors"}, case
            assert [error["path"] for error in body["errors"]] == [case[0][0]], case
            assert statements == [], case


def test_limit_zero_is_a_400_and_never_every_row(make_app: AppFactory, database: Database) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products?limit=0")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "limit must be an integer from 1 to 100", "path": "limit"}
    ]


def test_with_bad_offset_and_limit_the_offset_is_reported_first(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products?offset=-1&limit=abc")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["offset"]


def test_an_undecodable_query_string_is_a_400(make_app: AppFactory, database: Database) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products", environ_overrides={"QUERY_STRING": "offset=%FF%FE"})
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["path"] == "offset"


def test_error_messages_do_not_echo_the_client_value(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):
        response = client.get("/products", query_string={"offset": "<script>", "limit": "<b>"})
    assert "<" not in response.get_data(as_text=True)


def test_page_sizes_come_from_the_config(make_app: AppFactory, database: Database) -> None:
    config: dict[str, Any] = {"CST_API_DEFAULT_PAGE_SIZE": 10, "CST_API_MAX_PAGE_SIZE": 40}
    with products_client(make_app, database, **config) as (client, _):
        default = client.get("/products")
        largest = client.get("/products?limit=40")
        too_large = client.get("/products?limit=41")
    assert _links(default)[0] == f"{BASE}?offset=10&limit=10"
    assert len(_ids(largest)) == 40
    assert too_large.status_code == 400


_INTEGER_TEXT = st.integers(min_value=-5, max_value=150).map(str)
_TRICKY_TEXT = st.sampled_from(
    ["", "0", "00", "025", "0x10", "1.5", "+5", "-0", " 7", "7 ", "\x00", "1e2", str(MAX_OFFSET)]
)
_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=8)
_PARAM = st.none() | _INTEGER_TEXT | _TRICKY_TEXT | _ANY_TEXT


def _expected_value(text: str | None, default: int, minimum: int, maximum: int) -> int | None:
    """The oracle: the value a strict parser accepts, or None when it must be rejected."""
    if text is None:
        return default
    if not text or not all("0" <= ch <= "9" for ch in text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def test_any_offset_and_limit_strings_give_a_correct_page_or_a_400_never_a_500(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database) as (client, _):

        @settings(max_examples=60, deadline=None)
        @given(offset=_PARAM, limit=_PARAM)
        def check(offset: str | None, limit: str | None) -> None:
            query = [(k, v) for k, v in (("offset", offset), ("limit", limit)) if v is not None]
            response = client.get("/products", query_string=query)
            # CST_REFUSE_NUL (issue 24): NUL anywhere in the query string is refused when the
            # arguments are read, naming the first parameter that holds it.
            nul = [name for name, value in query if "\x00" in value]
            if nul:
                assert response.status_code == 400
                assert [e["path"] for e in response.get_json()["errors"]] == nul[:1]
                return
            want_offset = _expected_value(offset, 0, 0, MAX_OFFSET)
            want_limit = _expected_value(limit, 25, 1, 100)
            if want_offset is None or want_limit is None:
                assert response.status_code == 400
                paths = [e["path"] for e in response.get_json()["errors"]]
                # The first bad parameter, offset before limit.
                assert paths == ["offset" if want_offset is None else "limit"]
                return
            assert response.status_code == 200
            expected = list(range(1, ROWS + 1))[want_offset : want_offset + want_limit]
            assert _ids(response) == expected
            next_url, prev_url = _links(response)
            has_next = want_offset + want_limit < ROWS
            assert next_url == (
                f"{BASE}?offset={want_offset + want_limit}&limit={want_limit}" if has_next else None
            )
            assert prev_url == (
                f"{BASE}?offset={max(want_offset - want_limit, 0)}&limit={want_limit}"
                if want_offset > 0
                else None
            )

        check()


# -- totals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_total_is_added_when_the_resource_asks_for_it(
    make_app: AppFactory, database: Database, source: Source
) -> None:
    with products_client(make_app, database, source, with_total=True) as (client, _):
        first = client.get("/products")
        filtered = client.get("/products", query_string={"category": "plain", "offset": "60"})
    assert first.get_json()["meta"]["pagination"]["total"] == ROWS
    assert filtered.get_json()["meta"]["pagination"]["total"] == (ROWS + 1) // 2


def test_total_is_absent_by_default(make_app: AppFactory, database: Database) -> None:
    with (
        products_client(make_app, database) as (client, engine),
        captured_statements(engine) as statements,
    ):
        response = client.get("/products")
    assert "total" not in response.get_json()["meta"]["pagination"]
    assert len(statements) == 1


def test_total_costs_one_count_query_without_order_by(
    make_app: AppFactory, database: Database
) -> None:
    with (
        products_client(make_app, database, with_total=True) as (client, engine),
        captured_statements(engine) as statements,
    ):
        client.get("/products")
    assert len(statements) == 2
    assert "ORDER BY" not in statements[1][0].upper()


# -- sessions, state, other methods -------------------------------------------------------------


def test_a_select_without_any_session_raises_a_clear_error(make_app: AppFactory) -> None:
    app = make_app()

    class Products(ApiPaginatedMixin, ApiResource):
        pass

    with app.test_request_context("/products"):
        resource = Products()
        resource._before_method()
        with pytest.raises(MissingSessionError, match=r"session=.*init_app\(app, db\)"):
            resource.get_paginated_query_result(sa.select(Product))


def test_a_legacy_query_runs_on_the_session_given(make_app: AppFactory, database: Database) -> None:
    engine = database.engine()
    seed(engine)
    app = make_app()

    class Products(ApiPaginatedMixin, ApiResource):
        pagination_with_total = True

        def get(self) -> Any:
            with Session() as unbound, Session(engine) as session:
                # The query's own session has no engine: only the given one can run it.
                query = unbound.query(Product).order_by(Product.id)
                return _serialize(self.get_paginated_query_result(query, session))

    ChassisApi(app).add_resource(Products, "/products")
    response = app.test_client().get("/products?offset=100")
    assert _ids(response) == list(range(101, ROWS + 1))
    assert response.get_json()["meta"]["pagination"]["total"] == ROWS


def test_a_method_that_does_not_paginate_gets_no_pagination_meta(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database, "legacy_query") as (client, _):
        response = client.post("/products")
    assert response.status_code == 201
    assert "pagination" not in response.get_json()["meta"]
    assert "Link" not in response.headers


def test_pages_are_kept_per_request_instance_not_on_the_class(
    make_app: AppFactory, database: Database
) -> None:
    with products_client(make_app, database, "legacy_query") as (client, _):
        client.get("/products?offset=25")
        response = client.post("/products")
    assert "pagination" not in response.get_json()["meta"]
    assert not {"_page", "_pagination_request"} & set(vars(ApiPaginatedMixin))


def test_a_resource_instance_shared_across_requests_is_refused() -> None:
    with pytest.raises(TypeError, match="init_every_request"):

        class Shared(ApiPaginatedMixin, ApiResource):
            init_every_request = False


def test_an_unknown_pagination_mode_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="pagination_mode='pages'"):

        class Pages(ApiPaginatedMixin, ApiResource):
            pagination_mode = "pages"  # type: ignore[assignment]  # the point: not a known mode


def test_the_mixin_listed_after_api_resource_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"class Reversed\(ApiPaginatedMixin, ApiResource\)"):

        class Reversed(ApiResource, ApiPaginatedMixin):  # type: ignore[misc]  # the point: wrong order
            pass


def test_a_bad_limit_raised_by_the_hook_is_a_400_before_the_method_runs(
    make_app: AppFactory,
) -> None:
    calls: list[str] = []

    class Products(ApiPaginatedMixin, ApiResource):
        def get(self) -> Any:
            calls.append("get")
            return []

    app = make_app()
    ChassisApi(app).add_resource(Products, "/products")
    response = app.test_client().get("/products?limit=0")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "limit must be an integer from 1 to 100", "path": "limit"}
    ]
    assert calls == []
