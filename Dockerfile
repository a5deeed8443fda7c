# One image for web, CPU worker and GPU worker. The GPU worker's image is built with a CUDA
# build of torch: set TORCH_INDEX_URL to PyTorch's CUDA wheel index (docker-compose.yml passes it).
# The whole build context is copied (.dockerignore leaves out tests, caches and local data), so a
# new app is in the image without touching this file; tests/access/test_dockerfile.py checks it.
FROM python:3.11-slim-bookworm

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SPOTTHEFAKE_VAR_DIR=/var/lib/spotthefake MEDIA_ROOT=/var/lib/spotthefake/media \
    MODEL_ROOT=/var/lib/spotthefake/models

WORKDIR /app
# torch first, in its own layer: it is the slowest download and changes least.
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --no-cache-dir "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL"; \
    else pip install --no-cache-dir "$TORCH_SPEC"; fi
COPY . ./
RUN pip install --no-cache-dir . \
 && SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --home /app spotthefake \
 && mkdir -p /var/lib/spotthefake && chown -R spotthefake /var/lib/spotthefake
USER spotthefake
EXPOSE 8000
# Plain HTTP inside the compose network only; the TLS-terminating proxy is the way in.
# Port, workers (WEB_WORKERS) and timeout: gunicorn.conf.py.
CMD ["gunicorn", "spotthefake.wsgi"]
