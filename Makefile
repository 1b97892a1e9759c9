# The README's two commands: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench bpf bpf-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per install flavour, redone when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/iosignal run

test: $(VENV)/.installed-test bpf-check
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict -q -d $(VENV)/site
	$(BIN)/mypy contract daemon app cli worker observer benchmarks
	$(BIN)/python tests/run_parts.py $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy contract daemon app cli worker observer benchmarks

# The observer's BPF programs: restricted C, CO-RE against the committed vmlinux.h, compiled
# by clang into objects that are committed (installing iosignal needs no compiler). Relative
# paths and a fixed compilation dir keep the objects byte-identical wherever they are built.
PROGS     := observer/progs
BPF_OBJS  := $(PROGS)/kvm_counts.bpf.o $(PROGS)/kvm_ioctls.bpf.o $(PROGS)/kvm_latency.bpf.o
BPF_CC     = cd $(PROGS) && clang -g -O2 -target bpf -D__TARGET_ARCH_x86 \
             -fdebug-compilation-dir=. -I. -c $(1).bpf.c -o $(2).full \
             && llvm-strip -g -o $(2) $(2).full && rm -f $(2).full

bpf: $(BPF_OBJS)

$(PROGS)/%.bpf.o: $(PROGS)/%.bpf.c $(PROGS)/iosignal.h $(PROGS)/vmlinux.h
	$(call BPF_CC,$*,$*.bpf.o)

# CI: the committed objects must be what their sources compile to.
bpf-check:
	@if ! command -v clang >/dev/null && [ "$${CI:-}" != true ]; then \
	  echo "bpf: clang not installed, committed objects not rebuilt (CI checks them)"; exit 0; fi; \
	tmp=$$(mktemp -d) && for o in $(BPF_OBJS); do n=$$(basename $$o .bpf.o); \
	  ($(call BPF_CC,$$n,$$tmp/$$n.bpf.o)) || exit 1; \
	  cmp -s $$o $$tmp/$$n.bpf.o || { echo "$$o differs from its source: run make bpf and commit it"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "bpf: committed objects match their sources"

bench: $(VENV)/.installed
	$(BIN)/iosignal bench

clean:
	rm -rf $(VENV) data .pytest_cache
