"""Core: settings, warehouse, territory, identifiers, months, the catalogue of published tables."""
