"""Measurement run from the checkout, outside ``make test``: the fault matrix
(``faults.py``, ``make faults``), the soak (``soak.py``, ``make soak``) and the A/B
benchmark scripts; ``make bench`` runs ``stream-app bench`` (``stream_app/dev/bench/``,
shipped so an installed worker can be measured) and then the scripts. They reuse the
test suite's service fixtures (``tests/support.py``, ``tests/topology.py``)."""
