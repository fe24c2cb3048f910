"""The pure core: keys, DSSE envelopes, records and their canonical payloads, the charter,
addresses, signing, verification, the chain rule, evidence, the view, the signing policy, signed
answers and bundles, charter approvals and the governance chain of charter versions.

Plain, synchronous, deterministic code: no event loop, sockets, databases or terminal output
(an import-linter contract in pyproject.toml keeps it so)."""
