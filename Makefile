# The two commands a new user needs: `make demo` and `make test`.  Both create and fill .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,viewer

.PHONY: demo test venv sysdeps body bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

# System packages: headless EGL/Mesa for the built-in renderer, mono's C# compiler for the Unity core checks.
# Each is installed only when missing (apt-get, with sudo when not root).
SYSLIBS := libEGL.so.1:libegl1 libEGL_mesa.so.0:libegl-mesa0 libgbm.so.1:libgbm1 libGL.so.1:libgl1 libGLX_mesa.so.0:libgl1-mesa-dri
sysdeps:
	@need=""; \
	for pair in $(SYSLIBS); do ldconfig -p | grep -q "$${pair%%:*}" || need="$$need $${pair##*:}"; done; \
	command -v mcs >/dev/null || need="$$need mono-mcs"; \
	if [ -n "$$need" ]; then \
	  echo "installing system packages:$$need"; \
	  sudo=""; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$need >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$need >/dev/null; }; \
	fi

# Anny builds its cache under ~/.cache/anny the first time on a machine (about 100 s); do it once,
# before any player or test process needs the body.
body: $(STAMP)
	@$(BIN)/python -m generator.body

demo: $(STAMP) sysdeps body
	$(BIN)/posebridge demo --out demo_out --resume

test: $(STAMP) sysdeps body
	$(BIN)/python -m pytest -q

bench: $(STAMP) sysdeps body
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo_out .pytest_cache
