"""Test doubles that speak real protocols (HTTP), so tests exercise real clients."""
