FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
RUN pip install --no-cache-dir .
USER nobody
CMD ["stream-app", "worker"]
