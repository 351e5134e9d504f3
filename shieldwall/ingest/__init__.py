"""Importers and exporters: everything that turns outside formats into STIX and back."""
