# One-word commands. `make demo` and `make test` work on a fresh machine with Python 3.11.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
OUT ?= demo-out

.PHONY: setup demo test bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	$(PYTHON) -m venv $(VENV)
	. $(BIN)/activate && scripts/install.sh --dev --editable
	touch $@

demo: setup
	$(BIN)/kdaug adapt-mlm --default
	$(BIN)/kdaug augment examples/sample.tsv --task sst2 -o $(OUT) --overwrite --mlm default --n 5
	$(BIN)/python -c "import pyarrow.parquet as pq; t = pq.read_table('$(OUT)/data/part-00000.parquet').to_pylist(); [print(r['variant'], r['text_a']) for r in t[:12]]"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/pos_agreement.py
	$(BIN)/python benchmarks/builder.py
	$(BIN)/python benchmarks/service_load.py --requests 400

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
