"""Degradation plugins defined outside the package, loaded by dotted path in the add-degradation tests."""
