# One image for web, worker, beat and migrations (docker-compose.yml picks the command).

# Front-end libraries from the npm registry (no CDN): ECharts, served by the app from static/vendor/.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-zenhei curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY marketplace ./marketplace
COPY workers ./workers
RUN pip install -e '.[dev]' && pybabel compile -d marketplace/translations -f
COPY . .
COPY --from=assets /build/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
COPY --from=assets /build/node_modules/echarts/LICENSE static/vendor/echarts.LICENSE
RUN useradd --create-home tanhui && mkdir -p /app/instance && chown -R tanhui /app/instance
USER tanhui
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "marketplace.wsgi:app"]
