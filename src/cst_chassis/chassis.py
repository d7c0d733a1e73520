"""cst-micro-chassis's import path for the extension: ``from cst_chassis.chassis import ...``.

cst-micro-chassis defined ``CstMicroChassis`` in ``cst_micro_chassis.chassis``; code ported by
renaming the package keeps importing it from here. New code imports it from ``cst_chassis``.
"""

from __future__ import annotations

from cst_chassis.extension import CstMicroChassis

__all__ = ["CstMicroChassis"]
