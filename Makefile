# Two commands on a fresh machine:  `make demo` (the whole job end to end) and `make test`.
PY := .venv/bin/python
CONFIG ?= models/kws_mamba.yaml
RUN ?= runs/$(basename $(notdir $(CONFIG)))

# The data root (README: Data). Our machines keep the real data beside the repo; a user's default is data/.
ifneq ($(wildcard ../shared/data),)
export KWS_DATA ?= $(abspath ../shared/data)
endif
ifneq ($(wildcard ../shared/teachers),)
export KWS_TEACHERS ?= $(abspath ../shared/teachers)
endif

.PHONY: setup kokoro model demo results train test lint clean fuzz firmware-models firmware-headers

setup:
	@bash tools/setup_env.sh

## kokoro: the optional Kokoro-82M engine of the generated set (README: Data), into data/kokoro/
kokoro: setup
	$(PY) tools/gen_data.py --setup-kokoro

## model: the shipped model's recipe, one command: every source of the YAML, all of its epochs (README: Results)
model: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN) --compile

# The demo runs the same recipe for fewer epochs (and a QAT of a few hundred steps: one QAT epoch of the full
# mix takes about 25 minutes on 2 cores), to stay under 45 minutes on 2 cores.
DEMO_EPOCHS ?= 5
DEMO_QAT_STEPS ?= 200
TEACHERS ?= ds_cnn_l,ds_cnn_s,mlperf_float,mlperf_int8,ensemble
STREAM_TEACHERS ?= ds_cnn_l,mlperf_int8

## demo: the whole job end to end: data (generated speech; the real feature maps, real clips and teachers
## where the data root has them), training, evaluation next to the teachers, quantisation-aware fine-tuning
## and the paper's unrolled int8 TFLite path (export, TFLM check, split), the fused custom-op model, the
## kernel benchmark on Cortex-M3/M4 under QEMU, the size table and streaming detection.
demo: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN) --compile --epochs $(DEMO_EPOCHS)
	$(PY) tools/evaluate.py --checkpoint $(RUN)/best.pt --teachers $(TEACHERS)
	$(PY) tools/train.py --config $(CONFIG) --init $(RUN)/best.pt --qat --out $(RUN)_int8 --max-steps $(DEMO_QAT_STEPS)
	$(PY) tools/export.py --checkpoint $(RUN)_int8/best.pt --out $(RUN)_int8/export
	$(PY) tools/export.py --checkpoint $(RUN)_int8/best.pt --kinds int8 --time-chunks 8 --out $(RUN)_int8/export_c8
	$(PY) tools/split.py --model $(RUN)_int8/export_c8/model_int8.tflite -k 8
	$(PY) tools/fused_tflite.py --checkpoint $(RUN)/best.pt --int8 --out $(RUN)/fused/kws_fused_int8.tflite
	$(PY) tools/compare_paths.py --checkpoint $(RUN)/best.pt --real v2_test_dev --real-clips 500 --test 200
	$(PY) tools/bench_kernels.py --checkpoint $(RUN)/best.pt --clips 0 --json $(RUN)/bench_kernels.json
	$(PY) tools/size_table.py $(RUN) --json $(RUN)/size_table.json --plot $(RUN)/size_table.png
	$(PY) tools/stream_eval.py --checkpoint $(RUN)/best.pt --minutes 15 --out $(RUN)/stream
	@echo "demo done: outputs in $(RUN)/"

## results: every figure the README publishes, measured on the trained $(RUN) (after `make model`), into
## results.json with its commands, and the README's result tables rewritten from it (tools/results.py)
RESULTS_MINUTES ?= 60
results: setup
	$(PY) tools/evaluate.py --checkpoint $(RUN)/best.pt --teachers $(TEACHERS)
	$(PY) tools/size_table.py $(RUN) --json $(RUN)/size_table.json --plot $(RUN)/size_table.png
	$(PY) tools/compare_paths.py --checkpoint $(RUN)/best.pt --real v2_test_dev --paths fused_int8,fused_int8_stream --out $(RUN)/compare_paths
	$(PY) tools/bench_kernels.py --checkpoint $(RUN)/best.pt --clips 0 --json $(RUN)/bench_kernels.json
	$(PY) tools/stream_eval.py --checkpoint $(RUN)/best.pt --minutes $(RESULTS_MINUTES) --teachers $(STREAM_TEACHERS) --out $(RUN)/stream
	$(PY) tools/results.py --run $(RUN) --minutes $(RESULTS_MINUTES) --out results.json --readme README.md

## firmware-models: app/model/*.tflite from checkpoints (the fused models from CHECKPOINT, the builtin-op model
## from the --qat fine-tuning's QAT_CHECKPOINT), a provenance JSON beside each, and the headers in app/src/generated/
CHECKPOINT ?= $(RUN)/best.pt
QAT_CHECKPOINT ?= $(RUN)_int8/best.pt
firmware-models: setup
	$(PY) tools/firmware_models.py --checkpoint $(CHECKPOINT) --qat-checkpoint $(QAT_CHECKPOINT) --config $(CONFIG)

## firmware-headers: only the headers in app/src/generated/ (and the streaming body) from app/model/*.tflite
firmware-headers: setup
	$(PY) tools/gen_firmware.py --config $(CONFIG)

train: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN)

## test: the whole test suite (what CI runs)
test: setup
	$(PY) -m ruff check tools tests
	$(PY) -m pytest

## fuzz: the libFuzzer harnesses of the C core (validator + kernels, options parser), FUZZ_SECONDS each;
## prints executions, coverage and findings (needs clang and libflatbuffers-dev; corpus grows in build/fuzz)
FUZZ_SECONDS ?= 60
fuzz: setup
	sh modules/tflm_mamba/tests/fuzz/run_fuzz.sh $(FUZZ_SECONDS) build/fuzz

lint: setup
	$(PY) -m ruff check tools tests

clean:
	rm -rf build runs .pytest_cache
