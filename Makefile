# Two commands for a fresh machine:  `make run` (quickstart training)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= data
SHARED_CIFAR := ../shared/data/make_cifar10_batches.py

.PHONY: install data run test test-fast lint docs

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# CIFAR-10 in the standard layout: built from a local JPEG copy when one sits beside the
# project, otherwise downloaded on first use (--data.download true).
data: install
	@if [ -f $(DATA)/cifar-10-batches-py/test_batch ]; then :; \
	elif [ -f $(SHARED_CIFAR) ]; then $(PY) $(SHARED_CIFAR) $(DATA); \
	else $(PY) -c "from sslprobe.data import load_cifar10; load_cifar10('$(DATA)', download=True)"; fi

run: data
	$(PY) -m sslprobe fit --config configs/quickstart.yaml --data.root $(DATA)

test: data
	$(PY) -m pytest

test-fast: data
	$(PY) -m pytest -m "not slow"

lint: install
	$(PY) -m ruff check sslprobe tests scripts

# The documentation site into site/ (docs/ + mkdocs.yml); --strict fails on any broken link or API symbol.
docs: install
	$(PY) -m pip install -q -e ".[docs]"
	$(PY) -m mkdocs build --strict --site-dir site

# Packaging: the wheel installed into a fresh venv that already holds the tested torch keeps it,
# and its `sslprobe` console script runs (.ci/check_wheel); `constraints` re-pins the tested set
# (direct and test dependencies) from this venv.
.PHONY: wheel-check constraints
wheel-check: install
	.ci/check_wheel $(PY)

constraints: install
	@{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze | grep -iE '^(torch|torchvision|torchmetrics|lightning|timm|wandb|submitit|jsonargparse|docstring[-_]parser|typeshed[-_]client|matplotlib|numpy|rich|pytest|pytest-timeout|ruff|mkdocs|mkdocs-material|mkdocstrings|mkdocstrings-python)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
