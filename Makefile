# Two commands for a fresh clone:  make demo   and   make test
# Both create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned here, not in pyproject.toml: 2.13.0 is a small CPU build on CI machines;
# override on a desktop, e.g. `make demo TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
# The Qt binding: PyQt6 (napari deprecates PyQt5); `make test QT_EXTRA=pyside6` or `=pyqt5` also work.
QT_EXTRA ?= pyqt6
# napari (qtpy) and pytest-qt both follow QT_API / PYTEST_QT_API: one binding per process
export QT_API ?= $(QT_EXTRA)
export PYTEST_QT_API ?= $(QT_EXTRA)
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

# On headless Linux napari needs an X server with OpenGL (Xvfb + Mesa) and the xcb libraries of Qt's
# X11 platform plugin. As root with apt-get, the missing ones are installed; otherwise we say what to install.
X_PACKAGES := xvfb xauth libgl1 libegl1 libglx-mesa0 libopengl0 libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
	libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
xvfb:
ifeq ($(UNAME),Linux)
	@if command -v dpkg >/dev/null 2>&1; then \
	  missing=""; for p in $(X_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "Installing with apt-get:$$missing"; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null); \
	    elif [ -z "$$DISPLAY" ]; then \
	      echo "No display and missing packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; \
	    fi; \
	  fi; \
	elif [ -z "$$DISPLAY" ] && ! command -v Xvfb >/dev/null 2>&1; then \
	  echo "No display and no Xvfb: install Xvfb (and Mesa) with your package manager"; exit 1; \
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
