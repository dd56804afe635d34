# giugan developer commands. `make install` installs everything from this repository's files.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip

.PHONY: install test bench bench-quality gpu-check gpu-check-dry-run lint quickstart profile docs-numbers

# torch/torchvision first and pinned: a resolver must never pull a newer (multi-GB) torch.
install:
	$(PIP) install --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(PIP) install --disable-pip-version-check -e ".[dev]"

# The whole suite on CPU; W&B disabled (no account needed). Two workers (pytest-xdist), each
# taking whole test files (their module fixtures train once); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test:
	WANDB_MODE=disabled $(PYTHON) -m pytest -p no:warnings -n $(TEST_WORKERS) --dist loadfile

# Speed targets as ratios measured side by side in one run (see benchmarks/README.md).
bench:
	WANDB_MODE=disabled $(PYTHON) benchmarks/train_step.py
	WANDB_MODE=disabled $(PYTHON) benchmarks/precision_speed.py
	$(PYTHON) benchmarks/igan_timing.py
	$(PYTHON) benchmarks/involution_aggregation.py
	$(PYTHON) benchmarks/ddp_arrangements.py

# The GPU check (a machine with CUDA; about 5 minutes). `make gpu-check-dry-run` runs it on CPU.
gpu-check:
	WANDB_MODE=disabled $(PYTHON) benchmarks/gpu_check.py

gpu-check-dry-run:
	WANDB_MODE=disabled $(PYTHON) benchmarks/gpu_check.py --dry-run --results-dir /tmp/giugan-gpu-check

# The quickstart run by its own script: the shapes judge's numbers per evaluation and the wall time.
bench-quality:
	WANDB_MODE=disabled $(PYTHON) benchmarks/quality.py

# The numbers README.md and docs/counting.md quote from `giugan profile` (a test fails when stale).
docs-numbers:
	$(PYTHON) -m giugan.profiling.doc_numbers

lint:
	$(PYTHON) -m ruff check giugan tests benchmarks

# The main job on built-in data (no download): trains the quickstart GIU-GAN on synthetic shapes.
quickstart:
	WANDB_MODE=offline giugan fit --config configs/quickstart.yaml

profile:
	giugan profile --all
