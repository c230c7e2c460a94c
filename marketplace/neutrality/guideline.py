"""The guideline's emission sources, as the footprint feature records them on every activity line
(footprint.sources): a plan's boundary is drawn over the same list."""

from __future__ import annotations

from marketplace.footprint.sources import BY_CODE, SOURCE_CODES, SOURCES, Source, sources_of

__all__ = ["BY_CODE", "SOURCE_CODES", "SOURCES", "Source", "sources_of"]
