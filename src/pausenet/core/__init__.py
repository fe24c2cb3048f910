"""The pure core: keys, DSSE envelopes, records and their canonical payloads, the charter,
signing, verification, evidence, the view, signed answers and bundles.

Plain, synchronous, deterministic code: no event loop, sockets, databases or terminal output
(an import-linter contract in pyproject.toml keeps it so)."""
