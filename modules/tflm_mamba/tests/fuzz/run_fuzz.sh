#!/bin/sh
# Build the libFuzzer harnesses (clang -fsanitize=fuzzer,address,undefined) and run each for a
# fixed time from the committed seed corpus; print executions, coverage and findings.
#
#   sh modules/tflm_mamba/tests/fuzz/run_fuzz.sh SECONDS [OUT_DIR]      (make fuzz FUZZ_SECONDS=600)
#
# fuzz_block    any bytes -> int8 block -> validator -> kernels (fuzz_block.c)
# fuzz_options  any bytes -> MAMBA_BLOCK custom options parser -> validator -> one step
#               (fuzz_options.cc; needs flatbuffers/flexbuffers.h: apt-get install libflatbuffers-dev)
# The working corpus grows in OUT_DIR/corpus_<name> (the committed seeds are copied, never written);
# a finding leaves OUT_DIR/<name>-crash-* and the exit status is 1.
set -eu
SECS=${1:-20}
OUT=${2:-build/fuzz}
HERE=$(cd "$(dirname "$0")" && pwd)
MOD=$(cd "$HERE/../.." && pwd)
CC=${CC:-clang}
CXX=${CXX:-clang++}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
mkdir -p "$OUT/obj"
OUT=$(cd "$OUT" && pwd)

# the C core, instrumented for coverage (one object per file: C, linked into C and C++ harnesses)
for f in "$MOD"/src/*.c; do
	$CC -std=c99 -g -O1 -Wall -Wextra -Werror $SAN -fsanitize=fuzzer-no-link -I"$MOD/include" \
		-c "$f" -o "$OUT/obj/$(basename "$f" .c).o"
done
$CC -std=c99 -g -O1 -Wall -Wextra -Werror $SAN -fsanitize=fuzzer -I"$MOD/include" \
	"$HERE/fuzz_block.c" "$OUT"/obj/*.o -o "$OUT/fuzz_block" -lm
HARNESSES="fuzz_block"
if echo '#include <flatbuffers/flexbuffers.h>' | $CXX -std=c++17 -fsyntax-only -x c++ - 2>/dev/null; then
	$CXX -std=c++17 -g -O1 -Wall -Wextra -Werror $SAN -fsanitize=fuzzer -DFLATBUFFERS_LOCALE_INDEPENDENT=0 \
		-I"$MOD/include" -I"$MOD/tflm" "$MOD/tflm/mamba_block_options.cc" "$HERE/fuzz_options.cc" \
		"$OUT"/obj/*.o -o "$OUT/fuzz_options" -lm
	HARNESSES="$HARNESSES fuzz_options"
else
	echo "fuzz_options: skipped (no flatbuffers/flexbuffers.h: apt-get install libflatbuffers-dev)"
fi

status=0
for h in $HARNESSES; do
	name=${h#fuzz_}
	mkdir -p "$OUT/corpus_$name"
	cp "$HERE/corpus/$name/"* "$OUT/corpus_$name/"
	maxlen=$([ "$name" = block ] && echo 20000 || echo 4096)
	set +e
	"$OUT/$h" -max_total_time="$SECS" -max_len="$maxlen" -print_final_stats=1 -rss_limit_mb=1024 \
		-artifact_prefix="$OUT/$name-" "$OUT/corpus_$name" >"$OUT/$name.log" 2>&1
	rc=$?
	set -e
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.log" | tail -1)
	cov=$(grep -E '^#[0-9]+' "$OUT/$name.log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
	corpus=$(ls "$OUT/corpus_$name" | wc -l)
	findings=$(ls "$OUT/$name-"* 2>/dev/null | wc -l)
	echo "$h: ${SECS} s, executions ${execs:-?}, coverage (${cov:-?}), corpus $corpus, findings $findings, rc $rc"
	if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
		status=1
		grep -E 'ERROR|runtime error|SUMMARY' "$OUT/$name.log" | head -5
	fi
done
exit $status
