# Multi-stage: the production image (the default target, `app`, last below) carries the runtime lock and the
# application only — no test tools, no development lock, no tests, benches or tools. docker-compose.yml
# picks the command (web, worker, beat, migrate). The `stripe-emulator` target is the demo's Stripe emulator
# (docker-compose.demo.yml) and is never part of the production stack.

# Front-end libraries from the npm registry (no CDN): ECharts, served by the app from static/vendor/.
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

# Build stage: a virtual environment with the runtime lock (exact versions, hash-checked; setuptools and
# wheel included to build the project without fetching anything unpinned), the project installed into it
# from /app, the catalogues compiled. Only /opt/venv and /app leave this stage.
FROM python:3.11-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY marketplace ./marketplace
COPY workers ./workers
RUN pip install --no-deps --no-build-isolation -e . && pybabel compile -d marketplace/translations -f

# The demo's Stripe emulator (localstripe comes with the development lock): docker-compose.demo.yml only.
FROM build AS stripe-emulator
COPY requirements-dev.lock ./
RUN pip install --require-hashes -r requirements-dev.lock
COPY tools/stripe_emulator.py tools/
USER nobody
EXPOSE 8420
CMD ["python", "tools/stripe_emulator.py", "--host", "0.0.0.0", "--port", "8420"]

# The application: a fresh base, the build stage's environment and code, templates, static files and
# migrations. Default target (last stage).
FROM python:3.11-slim-bookworm AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-zenhei curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY --from=assets /build/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
COPY --from=assets /build/node_modules/echarts/LICENSE static/vendor/echarts.LICENSE
RUN useradd --create-home tanhui && mkdir -p /app/instance && chown -R tanhui /app/instance \
    && chmod 0700 /app/instance
USER tanhui
EXPOSE 8000
# gunicorn.conf.py (in /app) holds the timeouts; the command gives the address and process counts.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "marketplace.wsgi:app"]
