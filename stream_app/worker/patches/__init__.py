"""The patches this project makes to faust-streaming and aiokafka: one module per patch,
installed through ``worker/patch_registry.py``, which checks the versions and every
signature first (:mod:`stream_app.patching`)."""
