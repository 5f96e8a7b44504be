# Two entry points (see README "Quick start"):
#   make check   set up, then run the default verification suite
#   make test    set up, then run the test suite and the rate regression against results/rates (what CI runs, after make lint)
#   make lint    ruff with the rule set of pyproject.toml
VENV := .venv/bin
PYTEST_FAST := -m "not slow"

.PHONY: setup setup-test setup-lint check test test-all regression lint crosscheck clean
setup:
	@bash scripts/setup.sh
setup-test:
	@bash scripts/setup.sh test
setup-lint:
	@bash scripts/setup.sh lint
check: setup
	$(VENV)/verify list
	$(VENV)/verify check
test: setup-test
	$(VENV)/python -m pytest $(PYTEST_FAST) -q
	$(MAKE) --no-print-directory regression
regression: setup
	@out=$$(mktemp -d) && $(VENV)/verify rates --quick --regression --no-progress --out $$out > $$out/log.txt 2>&1; \
	status=$$?; grep -A40 "^regression against" $$out/log.txt; rm -rf $$out; exit $$status
lint: setup-lint
	$(VENV)/ruff check .
test-all: setup-test
	$(VENV)/python -m pytest -q
crosscheck:
	@bash scripts/setup.sh crosscheck
	$(VENV)/python -m pytest -m crosscheck -q
clean:
	rm -rf .venv build *.egg-info .pytest_cache
