# Two commands for a fresh clone:  make demo   and   make test
# Both create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned here, not in pyproject.toml: 2.13.0 is a small CPU build on CI machines;
# override on a desktop, e.g. `make demo TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
QT_EXTRA ?= pyqt5
STAMP := $(VENV)/.installed
SAMPLE ?= .sample-project
ARGS ?=
PYTEST_ARGS ?=
UNAME := $(shell uname -s)

.PHONY: demo test install xvfb benchmarks clean-sample

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(QT_EXTRA),testing]"
	@touch $(STAMP)

install: $(STAMP)

# On headless Linux napari needs an X server with OpenGL: Xvfb (Mesa does the GL).
xvfb:
ifeq ($(UNAME),Linux)
	@if [ -z "$$DISPLAY" ] && ! command -v Xvfb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Xvfb with apt-get"; \
	    (apt-get install -y -q xvfb >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q xvfb >/dev/null)); \
	  else \
	    echo "Xvfb is missing and there is no display: install it (sudo apt-get install xvfb)"; exit 1; \
	  fi; \
	fi
endif

test: $(STAMP) xvfb
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP) xvfb
	@if [ "$(UNAME)" = Linux ] && [ -z "$$DISPLAY" ]; then \
	  xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python -m napari_crack_al.demo --project $(SAMPLE) $(ARGS); \
	else \
	  $(BIN)/python -m napari_crack_al.demo --project $(SAMPLE) $(ARGS); \
	fi

benchmarks: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean-sample:
	rm -rf $(SAMPLE)
