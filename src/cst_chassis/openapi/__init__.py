"""OpenAPI 3.1 for a chassis app, derived from what its resources already declare.

Nothing is restated: operations come from the methods of every ``ApiResource`` on the app's URL
map, path parameters from the rule's converters (``<int:id>`` is an integer), the success body
from the method's return annotation wrapped in the envelope, request bodies and query parameters
from :func:`with_body` / :func:`with_args`, errors from the chassis's ``ErrorEnvelope``,
pagination from ``ApiPaginatedMixin`` and the limits in the config. The JSON Schemas are pydantic's
(``TypeAdapter.json_schemas``): TypedDicts, dataclasses, models, enums, ``datetime``,
``list[...]`` and ``X | None`` all work, and this module writes no schema of its own for a type.

Serving (``CST_OPENAPI_ENABLED``, off by default) adds the document at ``CST_OPENAPI_PATH`` and a
Swagger UI page at ``CST_OPENAPI_DOCS_PATH`` whose assets come from the ``flask-swagger-ui``
package (no CDN). ``python -m cst_chassis.openapi module:factory -o openapi.json`` exports the
same document at build time. Needs the ``openapi`` extra: ``pip install 'cst-chassis[openapi]'``.
"""

from __future__ import annotations

# load_app and swagger_ui_assets stay importable from here (as before the package split), though
# they are not in __all__.
from cst_chassis.openapi.cli import load_app as load_app
from cst_chassis.openapi.cli import main
from cst_chassis.openapi.decorators import (
    Accepted,
    Created,
    error_statuses,
    with_args,
    with_body,
    with_headers,
    with_query,
)
from cst_chassis.openapi.docs_page import register_openapi
from cst_chassis.openapi.docs_page import swagger_ui_assets as swagger_ui_assets
from cst_chassis.openapi.document import build_document
from cst_chassis.openapi.schemas import OpenAPIError, type_adapter

__all__ = [
    "Accepted",
    "Created",
    "OpenAPIError",
    "build_document",
    "error_statuses",
    "main",
    "register_openapi",
    "type_adapter",
    "with_args",
    "with_body",
    "with_headers",
    "with_query",
]
