# Tanhui — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 5000
STRIPE_PORT ?= 8420

export TANHUI_ENV ?= development

.PHONY: architecture install assets translations messages run test test-sqlite test-services lint bench bench-orders clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Front-end libraries come from the npm registry and are served by the app itself (no CDN).
static/vendor/echarts.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p static/vendor
	cp node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
	cp node_modules/echarts/LICENSE static/vendor/echarts.LICENSE

assets: static/vendor/echarts.min.js

# Compile the .po catalogues (the .mo files are build output, not committed).
translations: install assets
	@$(BIN)/pybabel compile --use-fuzzy -d marketplace/translations -f >/dev/null

# Re-extract the strings and merge them into the catalogues (then translate what is new).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--project Tanhui --copyright-holder Tanhui -o marketplace/translations/messages.pot .
	$(BIN)/pybabel update -i marketplace/translations/messages.pot -d marketplace/translations \
		--ignore-obsolete --no-fuzzy-matching

run: translations
	$(BIN)/marketplace db upgrade
	$(BIN)/marketplace seed-demo
	$(BIN)/python tools/devserver.py --port $(PORT) --stripe-port $(STRIPE_PORT)

# The whole suite on SQLite, then again on PostgreSQL + Redis (+ the Stripe emulator) where they are
# reachable. REQUIRE_SERVICES=1 (CI) makes a missing service fail instead of skip.
test: translations architecture test-sqlite test-services

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

bench-certificates: translations
	$(BIN)/python bench/certificate_latency.py
	$(BIN)/python bench/certificates_pdf.py

bench-dashboard: translations
	$(BIN)/python bench/dashboard.py

# Every benchmark, one after the other (several minutes; PostgreSQL and Redis on 127.0.0.1).
bench: bench-orders bench-certificates bench-dashboard

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
