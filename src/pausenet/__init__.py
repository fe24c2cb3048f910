"""pausenet: federated attestation nodes that coordinate a pause in frontier AI development."""

__version__ = "0.1.0"
