"""Integration tests: local servers (tests/servers), ``dag.test()`` runs, the ``cloudmarker`` command."""
