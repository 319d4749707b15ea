"""The deployable configuration, one place at the top of the repository: Kafka's and
Redis's service configs, an example settings file, the Prometheus alert rules and the
Grafana dashboard (README, "config/").

The build ships this directory in the wheel as the package ``stream_app.config``
(``setup.py`` maps it there), so an installed ``stream-app`` reads the same files as a
checkout: ``importlib.resources.files("stream_app.config")``. Resources only, no code.
"""
