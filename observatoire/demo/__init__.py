"""Generated data for the demo, the tests and the benchmarks: a synthetic SIRENE extract, a
questionnaire wave and network lists, and the SIAE linkage fixture.

Apart from the product: `observatoire demo` (the CLI, an edge) is the only product code that
imports this package; no layer of the month's flow does (an import-linter contract in
pyproject.toml checks it). Real months never go through here.
"""
