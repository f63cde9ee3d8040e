#!/usr/bin/env bash
# Flake hunt for the multi-process suites: runs the actors, comm and cli test cases RUNS times in
# each of two modes and prints a table of runs, failures and hangs (CTest timeouts) per suite.
#
#   bash scripts/stress.sh RUNS RELEASE_BUILD SANITIZE_BUILD     (make stress: 20 build build-sanitize)
#   STRESS_SUITES="actors comm cli" STRESS_EXCLUDE=<ctest regex> STRESS_TIMEOUT=<s per case>
#
# Modes: "contended" (Release build, every case pinned to one core while a busy loop spins on every
# core) and "asan" (the ASan+UBSan build). Exits non-zero if any run failed or hung.
set -uo pipefail
runs="${1:-20}"
release="${2:-build}"
sanitize="${3:-build-sanitize}"
read -r -a suites <<<"${STRESS_SUITES:-actors comm cli}"
exclude="${STRESS_EXCLUDE:-}"  # a CTest regex of cases to leave out, e.g. the long in-process layout sweeps
timeout="${STRESS_TIMEOUT:-600}"
declare -A fails hangs done_runs
for s in "${suites[@]}"; do for m in contended asan; do fails[$s/$m]=0; hangs[$s/$m]=0; done_runs[$s/$m]=0; done; done
logdir=$(mktemp -d /tmp/troupe-stress.XXXXXX)

spinners=()
start_contention() {
  for _ in $(seq "$(nproc)"); do (while :; do :; done) & spinners+=($!); done
}
stop_contention() {
  for p in "${spinners[@]}"; do kill "$p" 2>/dev/null; done
  wait "${spinners[@]}" 2>/dev/null
  spinners=()
}
trap stop_contention EXIT

run_mode() {  # run_mode MODE BUILD PREFIX...
  local mode="$1" build="$2"; shift 2
  for ((i = 1; i <= runs; i++)); do
    for s in "${suites[@]}"; do
      local log="$logdir/$mode-$s-$i.log"
      "$@" ctest --test-dir "$build" -R "^$s:" ${exclude:+-E "$exclude"} --timeout "$timeout" --output-on-failure \
        >"$log" 2>&1
      local f t
      f=$(grep -cE '^\s*[0-9]+ - .*\((Failed|SEGFAULT|Child aborted|Exception)\)' "$log")
      t=$(grep -cE '^\s*[0-9]+ - .*\(Timeout\)' "$log")
      fails[$s/$mode]=$((fails[$s/$mode] + f))
      hangs[$s/$mode]=$((hangs[$s/$mode] + t))
      done_runs[$s/$mode]=$((done_runs[$s/$mode] + 1))
      [ $((f + t)) -eq 0 ] || echo "stress: $mode $s run $i: $f failed, $t hung (log: $log)"
    done
    echo "stress: $mode run $i/$runs done"
  done
}

echo "stress: $runs runs of ${suites[*]}; logs in $logdir"
start_contention
run_mode contended "$release" taskset -c 0
stop_contention
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_mode asan "$sanitize" env

printf '\n| suite | mode | runs | failed cases | hung cases |\n| --- | --- | --- | --- | --- |\n'
bad=0
for s in "${suites[@]}"; do
  for m in contended asan; do
    printf '| %s | %s | %d | %d | %d |\n' "$s" "$m" "${done_runs[$s/$m]}" "${fails[$s/$m]}" "${hangs[$s/$m]}"
    bad=$((bad + fails[$s/$m] + hangs[$s/$m]))
  done
done
exit $((bad > 0))
