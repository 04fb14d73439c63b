#!/bin/bash
# Runs libostree's installed shell tests (Debian package ostree-tests) against
# rost run as `ostree` (a symlink named `ostree` first in PATH), and prints per
# tier how many test files pass and how many TAP `ok` lines they print, beside
# the real ostree's numbers from a baseline file.
#
# Usage: bench/conformance.sh [-j JOBS] [-t TIMEOUT] [-o OUTDIR] [-b BASELINE]
#                             [-c EXPECTED] [-w EXPECTED] [--real] TIER...
#   TIER      1, 2 or 3 (bench/conformance/tier*.txt), or a test file name
#   -b FILE   baseline table (default bench/conformance-baseline-real.txt)
#   -c FILE   check: fail when a file listed in FILE ("NAME OKCOUNT" lines)
#             does not pass or prints fewer ok lines than listed
#   -w FILE   write the files that pass now, with their ok counts, to FILE
#   --real    run the real /usr/bin/ostree instead (to regenerate a baseline)
# Per-test logs land in OUTDIR/logs (default: a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
SRCDIR=/usr/libexec/installed-tests/libostree
JOBS=2
TIMEOUT=300
OUT=""
BASE=bench/conformance-baseline-real.txt
CHECK=""
WRITE=""
REAL=0
args=()
while [ $# -gt 0 ]; do
    case $1 in
        -j) JOBS=$2; shift 2;;
        -t) TIMEOUT=$2; shift 2;;
        -o) OUT=$2; shift 2;;
        -b) BASE=$2; shift 2;;
        -c) CHECK=$2; shift 2;;
        -w) WRITE=$2; shift 2;;
        --real) REAL=1; shift;;
        -h|--help) sed -n '2,16p' "$0"; exit 0;;
        *) args+=("$1"); shift;;
    esac
done
[ ${#args[@]} -gt 0 ] || { echo "usage: $0 [options] TIER..." >&2; exit 2; }
for tool in bc timeout; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -d "$SRCDIR" ] || { echo "error: $SRCDIR missing: install ostree-tests (scripts/install-deps.sh)" >&2; exit 1; }

# tier name of each test, in order
declare -A TIER_OF=()
tests=()
for a in "${args[@]}"; do
    case $a in
        1) list=bench/conformance/tier1-repo.txt;;
        2) list=bench/conformance/tier2-http.txt;;
        3) list=bench/conformance/tier3-admin.txt;;
        *) list="";;
    esac
    if [ -n "$list" ]; then
        while read -r l; do
            l=${l%%#*}; l=${l//[[:space:]]/}
            [ -n "$l" ] && { tests+=("$l"); TIER_OF[$l]=$a; }
        done < "$list"
    else
        tests+=("$a"); TIER_OF[$a]=other
    fi
done

[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/rost-conformance.XXXXXX)
rm -rf "$OUT/logs" "$OUT/res" "$OUT/tmp"
mkdir -p "$OUT/logs" "$OUT/res" "$OUT/tmp" "$OUT/bin"
if [ $REAL = 1 ]; then
    PATHDIR=/usr/bin
    under_test=/usr/bin/ostree
else
    cargo build -p rost --locked --quiet
    ln -sf "$PWD/target/debug/rost" "$OUT/bin/ostree"
    PATHDIR=$OUT/bin
    under_test="rost $(git rev-parse --short HEAD 2>/dev/null || echo '?') as ostree"
fi

run_one() {
    local t=$1 d rc s e
    d=$(mktemp -d "$OUT/tmp/$t.XXXXXX")
    s=$(date +%s.%N)
    # A clean environment: nothing from the caller (~/.cargo/bin, OSTREE_*) leaks in.
    ( cd "$d" && exec env -i HOME="$HOME" LANG=C.UTF-8 \
        PATH="$PATHDIR:/usr/sbin:/usr/bin:/sbin:/bin" \
        G_TEST_SRCDIR="$SRCDIR" G_TEST_BUILDDIR="$SRCDIR" \
        timeout -k 10 "$TIMEOUT" "$SRCDIR/$t" ) >"$OUT/logs/$t.log" 2>&1 && rc=0 || rc=$?
    e=$(date +%s.%N)
    echo "$rc $(echo "$e - $s" | bc)" > "$OUT/res/$t"
    rm -rf "$d" 2>/dev/null || true
}
export -f run_one
export OUT SRCDIR TIMEOUT PATHDIR HOME
T0=$(date +%s)
printf '%s\n' "${tests[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$1"' _ {}
T1=$(date +%s)

echo "# under test: $under_test; jobs=$JOBS; wall=$((T1 - T0))s; logs: $OUT/logs"
declare -A PASS_N=() FILES_N=() OK_N=() BPASS_N=() BOK_N=()
: > "$OUT/table.txt"
for t in "${tests[@]}"; do
    read -r rc secs < "$OUT/res/$t"
    log="$OUT/logs/$t.log"
    ok=$(grep -cE '^ok( |$)' "$log" || true)
    if [ "$rc" = 0 ]; then st=PASS; elif [ "$rc" = 124 ]; then st=TIMEOUT; else st=FAIL; fi
    printf '%-7s %-45s rc=%-3s %6.1fs  ok=%d\n' "$st" "$t" "$rc" "$secs" "$ok" | tee -a "$OUT/table.txt"
    tier=${TIER_OF[$t]}
    FILES_N[$tier]=$(( ${FILES_N[$tier]:-0} + 1 ))
    OK_N[$tier]=$(( ${OK_N[$tier]:-0} + ok ))
    [ $st = PASS ] && PASS_N[$tier]=$(( ${PASS_N[$tier]:-0} + 1 ))
    if [ -f "$BASE" ] && b=$(grep -E "^[A-Z]+ +$t " "$BASE" | head -1); then
        [[ $b == PASS* ]] && BPASS_N[$tier]=$(( ${BPASS_N[$tier]:-0} + 1 ))
        bok=$(sed -nE 's/.* ok=([0-9]+).*/\1/p' <<<"$b")
        BOK_N[$tier]=$(( ${BOK_N[$tier]:-0} + ${bok:-0} ))
    fi
done
echo "# tier   files passing (real ostree)   ok lines (real ostree)"
for tier in 1 2 3 other; do
    [ -n "${FILES_N[$tier]:-}" ] || continue
    printf '# %-6s %3d / %-3d (%3s)               %4d (%4s)\n' "$tier" "${PASS_N[$tier]:-0}" \
        "${FILES_N[$tier]}" "${BPASS_N[$tier]:--}" "${OK_N[$tier]}" "${BOK_N[$tier]:--}"
done

if [ -n "$WRITE" ]; then
    {
        echo "# Files of libostree's installed tests that rost passes as ostree, with their ok-line"
        echo "# counts (bench/conformance.sh -w). scripts/test.sh fails when one of them regresses."
        awk '$1 == "PASS" { sub("ok=", "", $5); print $2, $5 }' "$OUT/table.txt"
    } > "$WRITE"
    echo "# wrote $WRITE"
fi

status=0
if [ -n "$CHECK" ]; then
    while read -r t want; do
        [[ -z $t || $t == \#* ]] && continue
        line=$(grep -E "^[A-Z]+ +$t " "$OUT/table.txt" || true)
        [ -n "$line" ] || continue  # not among the tiers run
        got=$(sed -nE 's/.* ok=([0-9]+).*/\1/p' <<<"$line")
        if [[ $line != PASS* ]] || [ "$got" -lt "$want" ]; then
            echo "REGRESSION $t: expected PASS with ok>=$want, got: $line" >&2
            echo "--- last lines of $OUT/logs/$t.log:" >&2
            tail -n 15 "$OUT/logs/$t.log" >&2
            status=1
        fi
    done < "$CHECK"
    [ $status = 0 ] && echo "# check: every file in $CHECK still passes"
fi
exit $status
