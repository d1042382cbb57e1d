"""Helpers and fakes the tests share (importable; no tests here)."""
