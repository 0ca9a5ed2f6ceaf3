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

.PHONY: setup kokoro demo train test lint clean

setup:
	@bash tools/setup_env.sh

## kokoro: the optional Kokoro-82M engine of the generated set (README: Data), into data/kokoro/
kokoro: setup
	$(PY) tools/gen_data.py --setup-kokoro

# Half of v2_test_dev's speakers are trained on, the other half is reported (README: Data).
FINETUNE ?= 0.5

## demo: the whole job on the built-in generated data: data, training, evaluation, quantisation-aware
## fine-tuning and the paper's unrolled int8 TFLite path (export, TFLM check, split), the fused
## custom-op model, the kernel benchmark on Cortex-M3/M4 under QEMU, and streaming detection.
demo: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN) --real-finetune $(FINETUNE)
	$(PY) tools/train.py --config $(CONFIG) --init $(RUN)/best.pt --qat --out $(RUN)_int8 --real-finetune $(FINETUNE)
	$(PY) tools/export.py --checkpoint $(RUN)_int8/best.pt --out $(RUN)_int8/export
	$(PY) tools/export.py --checkpoint $(RUN)_int8/best.pt --kinds int8 --time-chunks 8 --out $(RUN)_int8/export_c8
	$(PY) tools/split.py --model $(RUN)_int8/export_c8/model_int8.tflite -k 8
	$(PY) tools/fused_tflite.py --checkpoint $(RUN)/best.pt --int8 --calib v1_sample --out $(RUN)/fused/kws_fused_int8.tflite
	$(PY) tools/compare_paths.py --checkpoint $(RUN)/best.pt --real v2_test_dev
	$(PY) tools/bench_kernels.py --checkpoint $(RUN)/best.pt --clips 0 --json $(RUN)/bench_kernels.json
	$(PY) tools/stream_eval.py --checkpoint $(RUN)/best.pt --minutes 15 --out $(RUN)/stream
	@echo "demo done: outputs in $(RUN)/"

train: setup
	$(PY) tools/train.py --config $(CONFIG) --out $(RUN)

## test: the whole test suite (what CI runs)
test: setup
	$(PY) -m ruff check tools tests
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check tools tests

clean:
	rm -rf build runs .pytest_cache
