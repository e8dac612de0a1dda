"""On-board test suite (see README.md); a package so its conftest never shadows tests/conftest.py."""
