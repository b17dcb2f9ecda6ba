# One-word commands. `make demo` and `make test` work on a fresh machine with Python 3.11.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
OUT ?= demo-out

.PHONY: setup demo test bench bench-augment bench-ablation bench-demo-mlm lint clean

# torch's CPU build unless nvidia-smi sees a GPU (TORCH=cpu or TORCH=cuda chooses)
TORCH ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	$(PYTHON) -m venv $(VENV)
	. $(BIN)/activate && scripts/install.sh --dev --editable $(if $(filter cpu,$(TORCH)),--cpu)
	touch $@

demo: setup
	$(BIN)/kdaug adapt-mlm --default
	$(BIN)/kdaug augment examples/sample.tsv --task sst2 -o $(OUT) --overwrite --mlm default --n 5
	$(BIN)/python -c "import pyarrow.parquet as pq; t = pq.read_table('$(OUT)/data/part-00000.parquet').to_pylist(); [print(r['variant'], r['text_a']) for r in t[:12]]"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks.pos_agreement
	$(BIN)/python -m benchmarks.builder
	$(BIN)/python -m benchmarks.service_load --requests 400
	$(MAKE) bench-augment

# kdaug against the official TinyBERT algorithm, nlpaug and TextAttack (installed here only).
bench-augment: setup
	$(BIN)/python -m pip install --quiet --no-deps -r benchmarks/requirements-peers.txt
	$(BIN)/python -m benchmarks.augment_speed

# Students distilled with and without augmentation (TASK=mrpc|sst2|..., about 30-60 min on CPU).
TASK ?= mrpc
bench-ablation: setup
	$(BIN)/python -m benchmarks.ablation --task $(TASK)

# The offline default MLM over 3 seeds, with and without the review sentences (about 30 min on CPU).
bench-demo-mlm: setup
	$(BIN)/python -m benchmarks.demo_mlm

# The GPU check (see README, "GPU check"): pytest -m gpu, augmentation and distillation speed, in
# under 8 minutes on one GPU; JSON and a table to $OUT. Needs no venv: a GPU machine's python3 with
# torch will do (its missing packages come from bench-out/device-bundle).
.PHONY: device-check
device-check:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m benchmarks.device_check $(if $(filter environment command line,$(origin OUT)),--out $(OUT))

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
