"""Real servers the test suite and the benchmarks start themselves: Dovecot and PostgreSQL.

Usable without pytest (context managers); `tests.servers.fixtures` wraps them for pytest.
"""
