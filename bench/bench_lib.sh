# bench_lib.sh - shared by the benchmark scripts (sourced): the Release build of one target, and timing
# that waits for a quiet machine and records how much of the CPU other processes used meanwhile.
# Needs ROOT, BUILD and TMP set by the caller.

# bench_build <target> <script name>: configures and builds <target> in $BUILD, or exits with the log.
bench_build() {
    echo "== build (Release, $BUILD)" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$TMP/cmake.log" 2>&1 || {
        cat "$TMP/cmake.log" >&2; echo "$2: cmake configure failed" >&2; exit 1; }
    cmake --build "$BUILD" --target "$1" -j2 >>"$TMP/cmake.log" 2>&1 || {
        tail -n 40 "$TMP/cmake.log" >&2; echo "$2: build failed" >&2; exit 1; }
}

# busy and total CPU ticks of the machine; our own finished children's CPU ticks.
cpu_ticks() { awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 }' /proc/stat; }
own_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
# wait_quiet: up to BENCH_QUIET_WAIT s for 6 s with other processes below 10% of the machine.
wait_quiet() {
    local max="${BENCH_QUIET_WAIT:-300}" t=0 a b
    while [ "$t" -lt "$max" ]; do
        a=($(cpu_ticks)); sleep 6; b=($(cpu_ticks)); t=$((t + 6))
        if [ $(( (b[0] - a[0]) * 100 )) -lt $(( (b[1] - a[1]) * 10 )) ]; then
            echo "(machine quiet after ${t} s)" >&2; return 0; fi
    done
    [ "$max" -gt 0 ] && echo "(machine still busy after ${max} s; measuring anyway)" >&2
    return 0
}
# run_measured <outfile> <cmd...>: runs cmd > outfile; sets FOREIGN to the % of the machine's CPU time
# used by other processes meanwhile.
run_measured() {
    local out="$1" a b o1 o2 rc=0; shift
    a=($(cpu_ticks)); o1=$(own_ticks)
    "$@" >"$out" || rc=$?
    b=($(cpu_ticks)); o2=$(own_ticks)
    FOREIGN=$(awk -v busy=$((b[0] - a[0])) -v own=$((o2 - o1)) -v tot=$((b[1] - a[1])) \
        'BEGIN { f = tot > 0 ? 100 * (busy - own) / tot : 0; printf "%.0f", f < 0 ? 0 : f }')
    return $rc
}
