from collections.abc import Mapping
from typing import Any

from flask import Response
from werkzeug.datastructures import Headers

def output_json(
    data: Any, code: int, headers: Mapping[str, str] | Headers | None = None
) -> Response: ...
