"""``python -m cst_chassis.openapi module:factory [-o FILE]``: write the document."""

from __future__ import annotations

import sys

from cst_chassis.openapi.cli import main

sys.exit(main())
