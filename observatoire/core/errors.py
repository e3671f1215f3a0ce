"""Errors that refuse a month, raised by several layers and caught by the refresh.

Here, not in one of the layers, so that a source reader (raw layer) and the cleaning rules can
both raise them without one importing the other.
"""

from __future__ import annotations


class RejectRateError(RuntimeError):
    """Too many rows rejected: the file is probably not what we think it is."""
