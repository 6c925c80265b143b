"""Metering integration: closed hours of usage written to the provider's bucket or directory."""
