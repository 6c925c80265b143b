"""Meterplane: usage-based billing for SaaS providers with a dedicated deployment per customer."""

__version__ = "0.1.0"
