"""Test tier: see tests/conftest.py and the README's test section. A package, so that
a test file may share its name with one in another tier."""
