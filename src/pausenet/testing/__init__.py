"""Fakes for tests and simulations: an in-memory gossip network and a fault-injecting TCP proxy."""
