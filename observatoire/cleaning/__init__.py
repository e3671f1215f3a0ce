"""Cleaning layer: `raw` rows typed and checked into `clean` (Polars rules), rejects beside."""
