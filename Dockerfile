FROM python:3.11-slim
# An unprivileged user with a home, owning the worker's state directory (a volume: the
# RocksDB tables survive the container; compose mounts a named volume there).
RUN useradd --system --uid 10001 --create-home --home-dir /home/app app \
 && install -d -o app -g app /var/lib/stream-app
WORKDIR /home/app
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
RUN pip install --no-cache-dir . && rm -rf stream_app pyproject.toml README.md
ENV STREAM_APP_DATA_DIR=/var/lib/stream-app
VOLUME ["/var/lib/stream-app"]
USER app
# The worker's liveness (compose overrides it for the reader); urllib raises on a 503.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=5)"]
CMD ["stream-app", "worker"]
