#!/bin/bash
# Benchmarks `rost repo commit` against `ostree commit` on one directory.
#
#   bench/commit.sh [DIR]          DIR defaults to /usr/share
#
# Environment:
#   RUNS=N         repetitions per mode (default 1); the tool that goes first
#                  alternates between runs and modes
#   MODES="..."    repo modes to measure (default "archive bare-user")
#   ROST=PATH      use this rost binary instead of building one
#   CARGO_TARGET_DIR  where `cargo build --release -p rost` puts the binary
#
# Each run commits DIR into a fresh repo per tool under target/bench-tmp (same
# filesystem as the tree, removed afterwards), with a fixed timestamp, and
# records wall time and peak RSS through /usr/bin/time. Caches cannot be
# dropped, so DIR is read once beforehand and both tools see a warm page
# cache. Both commits must have the same checksum, or the script fails.
set -euo pipefail

src=${1:-/usr/share}
runs=${RUNS:-1}
modes=${MODES:-archive bare-user}
timestamp=2020-01-01T00:00:00Z
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "bench/commit.sh: $*" >&2; exit 1; }

[ -d "$src" ] || die "$src is not a directory"
command -v ostree >/dev/null || die "ostree not found (scripts/install-deps.sh installs it)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (scripts/install-deps.sh installs the Debian time package)"

if [ -n "${ROST:-}" ]; then
    rost=$ROST
else
    (cd "$here" && cargo build --release -p rost >&2)
    rost=${CARGO_TARGET_DIR:-$here/target}/release/rost
fi
[ -x "$rost" ] || die "no rost binary at $rost"

tmp_parent=$here/target/bench-tmp
mkdir -p "$tmp_parent"
work=$(mktemp -d "$tmp_parent/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "warming the page cache: reading $src" >&2
tar cf /dev/null "$src" 2>/dev/null || true
echo "$src: $(du -sh --apparent-size "$src" 2>/dev/null | cut -f1) in $(find "$src" | wc -l) entries" >&2

# run TOOL MODE REPO: commits $src, sets csum, secs, rss_kb.
run() {
    local tool=$1 mode=$2 repo=$3 out
    rm -rf "$repo"
    case $tool in
    ostree)
        ostree --repo="$repo" init --mode="$mode"
        sync
        /usr/bin/time -f '%e %M' -o "$work/time" \
            ostree --repo="$repo" commit -b b --timestamp="$timestamp" "$src" >"$work/out"
        ;;
    rost)
        "$rost" repo init --repo "$repo" --mode "$mode"
        sync
        /usr/bin/time -f '%e %M' -o "$work/time" \
            "$rost" repo commit --repo "$repo" -b b --timestamp "$timestamp" "$src" >"$work/out"
        ;;
    esac
    out=$(tail -n 1 "$work/out")
    [[ $out =~ ^[0-9a-f]{64}$ ]] || die "$tool ($mode) printed no checksum: $(cat "$work/out")"
    csum=$out
    read -r secs rss_kb < <(tail -n 1 "$work/time")
    rm -rf "$repo"
}

fail=0
turn=0
printf '%-10s %-4s %9s %9s %7s %12s %12s  %s\n' \
    mode run ostree_s rost_s ratio ostree_rss rost_rss checksum
for ((i = 1; i <= runs; i++)); do
    for mode in $modes; do
        if ((turn % 2 == 0)); then order="ostree rost"; else order="rost ostree"; fi
        turn=$((turn + 1))
        for tool in $order; do
            run "$tool" "$mode" "$work/repo-$tool"
            printf -v "${tool}_csum" '%s' "$csum"
            printf -v "${tool}_secs" '%s' "$secs"
            printf -v "${tool}_rss" '%s' "$rss_kb"
        done
        ratio=$(awk -v r="$rost_secs" -v o="$ostree_secs" 'BEGIN { printf "%.2f", (o > 0 ? r / o : 0) }')
        printf '%-10s %-4s %9s %9s %7s %10sMB %10sMB  %s\n' "$mode" "$i" "$ostree_secs" "$rost_secs" \
            "$ratio" $((ostree_rss / 1024)) $((rost_rss / 1024)) "$ostree_csum"
        if [ "$ostree_csum" != "$rost_csum" ]; then
            echo "CHECKSUM MISMATCH in $mode mode: ostree $ostree_csum, rost $rost_csum" >&2
            fail=1
        fi
    done
done
[ "$fail" -eq 0 ] || die "rost and ostree produced different commits"
echo "checksums equal in every run" >&2
