#!/bin/sh
# fuzz-run.sh BINARY SECONDS - how `make fuzz` runs one libFuzzer target (the Makefile
# builds it): SECONDS on a scratch copy of its seeds, fuzz/corpus/NAME (NAME is the
# target's without "fuzz_"), under build/fuzz/run/TARGET/; then one line with the runs
# and the coverage reached (cov: edges, ft: features). A crash fails, naming its input,
# kept under build/fuzz/crashes/TARGET/ (the next run starts from the seeds again).
set -u
bin=$1
seconds=$2
target=$(basename "$bin")
seeds=fuzz/corpus/${target#fuzz_}
work=build/fuzz/run/$target
crashes=build/fuzz/crashes/$target

rm -rf "$work"
mkdir -p "$work/corpus" "$crashes"
if [ -d "$seeds" ]; then
    cp -R "$seeds"/. "$work/corpus"/
fi
"$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" "$work/corpus" >"$work/log" 2>&1
status=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
# libFuzzer's last status line: "#RUNS DONE cov: C ft: F corp: ..."
last=$(grep -E '^#[0-9]+.* cov: ' "$work/log" | tail -n 1)
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
if [ "$status" -eq 0 ]; then
    printf '%-16s ok     runs %-10s cov %-6s ft %-6s\n' "$target" "${runs:-?}" "${cov:-?}" "${ft:-?}"
    exit 0
fi
input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -n 1)
printf '%-16s CRASH  exit %s; input: %s\n' "$target" "$status" "${input:-none written}"
grep -E 'ERROR: |runtime error:|SUMMARY: |deadly signal' "$work/log" | head -n 8 | sed 's/^/    /'
echo "    log: $work/log${input:+; reproduce: $bin $input}"
exit 1
