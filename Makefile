# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint seed clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_content_demo
	$(BIN)/python manage.py sla_verify --fix --limit 0
	$(BIN)/python manage.py kpis_rebuild
	@echo ""
	@echo "  Lead pipeline: http://127.0.0.1:8000"
	@echo "  Demo logins (password: demo): admin, marketer, mmanager (marketing manager),"
	@echo "    smanager (sales manager), rep1 ... rep6 (sales reps). Ctrl-C stops everything."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# SQLite by default; PostgreSQL when DATABASE_URL points at one; the Celery integration tests
# run when CELERY_BROKER_URL points at Redis. Extra pytest arguments: make test PYTEST_ARGS="-k x".
test: $(STAMP)
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var
