#!/bin/bash
# Benchmarks `rost repo pull` against `ostree pull` over real nginx on loopback.
#
#   bench/pull.sh [DIR]        DIR defaults to /usr/share
#
# Builds an archive repo with commit 1 (DIR) and commit 2 (DIR with 2% of its
# files changed and a new 5 MB file), serves it with nginx on 127.0.0.1, and in
# the same run measures, for each tool, into fresh bare-user repos:
#   full     pull of commit 1 (objects; no deltas offered)
#   upgrade  1 → 2 without deltas (objects)
#   delta    1 → 2 through a static delta made by the same tool
# It prints wall time, bytes served, and rost/ostree ratios, plus the sizes of
# the two tools' deltas for the same commits. Environment: ROST=PATH skips the build.
set -euo pipefail
src=${1:-/usr/share}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "bench/pull.sh: $*" >&2; exit 1; }
command -v ostree >/dev/null || die "ostree not found (scripts/install-deps.sh)"
command -v nginx >/dev/null || die "nginx not found (scripts/install-deps.sh)"
if [ -n "${ROST:-}" ]; then rost=$ROST; else
    (cd "$here" && cargo build --release -p rost >&2)
    rost=${CARGO_TARGET_DIR:-$here/target}/release/rost
fi
mkdir -p "$here/target/bench-tmp"
work=$(mktemp -d "$here/target/bench-tmp/pull.XXXXXX")
nginx_pid=""
cleanup() { if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2>/dev/null || true; fi; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "building the served repos from $src" >&2
tree2=$work/tree2
cp -a "$src" "$tree2"
find "$tree2" -type f | awk 'NR % 50 == 0' | while read -r f; do printf 'changed %s\n' "$f" >> "$f" 2>/dev/null || true; done
mkdir -p "$tree2/new" && head -c 5000000 /dev/urandom > "$tree2/new/blob"
# Two served repos with the same commits: one gets ostree's delta, one rost's.
for who in ostree rost; do
    srv=$work/served-$who
    "$rost" repo init --repo "$srv" --mode archive
    c1=$("$rost" repo commit --repo "$srv" -b os --timestamp=2020-01-01T00:00:00Z "$src")
    c2=$("$rost" repo commit --repo "$srv" -b os --timestamp=2020-02-01T00:00:00Z "$tree2")
done
echo "commit 1 $c1, commit 2 $c2" >&2
ostree --repo="$work/served-ostree" static-delta generate --from="$c1" --to="$c2" >/dev/null
"$rost" repo static-delta generate --repo "$work/served-rost" --from "$c1" --to "$c2" >/dev/null
for who in ostree rost; do "$rost" repo summary --repo "$work/served-$who" -u; done
osize=$(du -sb "$work"/served-ostree/deltas | cut -f1); rsize=$(du -sb "$work"/served-rost/deltas | cut -f1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
user root; worker_processes 2; error_log $work/nginx/error.log; pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http { access_log $work/nginx/access.log; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  default_type application/octet-stream; keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $work; } }
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
served_bytes() { awk '{s += $10} END {print s+0}' "$work/nginx/access.log"; }

# measure TOOL PHASE: sets secs and bytes.
measure() {
    local tool=$1 phase=$2 repo=$work/client-$1 t0 t1 b0 url rev nodelta=""
    url=http://127.0.0.1:$port/served-$tool
    case $phase in
    full) rev=$c1 ;;
    upgrade) rev=$c2; nodelta=--disable-static-deltas ;;
    delta) rev=$c2 ;;
    esac
    if [ "$phase" != delta ] || [ ! -d "$repo-delta" ]; then :; fi
    if [ "$phase" = full ] || [ "$phase" = delta ]; then
        # delta starts again from a repo holding exactly commit 1.
        local r=$repo; [ "$phase" = delta ] && r=$repo-delta
        rm -rf "$r"
        if [ "$tool" = ostree ]; then
            ostree --repo="$r" init --mode=bare-user
            ostree --repo="$r" remote add --no-gpg-verify origin "$url"
        else
            "$rost" repo init --repo "$r" --mode bare-user
            "$rost" repo remote add --repo "$r" --no-gpg-verify origin "$url"
        fi
        if [ "$phase" = delta ]; then
            if [ "$tool" = ostree ]; then ostree --repo="$r" pull-local "$repo" "$c1" >/dev/null; ostree --repo="$r" refs --create=origin:os "$c1";
            else "$rost" repo pull-local --repo "$r" "$repo" "$c1" >/dev/null; "$rost" repo refs --repo "$r" --create origin:os "$c1"; fi
        fi
        repo=$r
    fi
    b0=$(served_bytes); t0=$(date +%s.%N)
    if [ "$tool" = ostree ]; then
        if [ "$phase" = delta ]; then ostree --repo="$repo" pull origin os >/dev/null
        else ostree --repo="$repo" pull --disable-static-deltas origin "os@$rev" >/dev/null; fi
    else
        if [ "$phase" = delta ]; then "$rost" repo pull --repo "$repo" origin os 2>/dev/null
        else "$rost" repo pull --repo "$repo" --disable-static-deltas origin "$rev" 2>/dev/null; fi
    fi
    t1=$(date +%s.%N)
    secs=$(echo "$t1 - $t0" | bc); bytes=$(( $(served_bytes) - b0 ))
}

printf '%-8s %-8s %10s %14s\n' phase tool seconds bytes
for phase in full upgrade delta; do
    measure ostree $phase; o_s=$secs; o_b=$bytes
    printf '%-8s %-8s %10.2f %14d\n' $phase ostree "$o_s" "$o_b"
    measure rost $phase; r_s=$secs; r_b=$bytes
    printf '%-8s %-8s %10.2f %14d\n' $phase rost "$r_s" "$r_b"
    printf '%-8s ratio rost/ostree: time %.2f, bytes %.2f\n' $phase "$(echo "$r_s / $o_s" | bc -l)" "$(echo "$r_b / ($o_b + 0.000001)" | bc -l)"
done
printf 'delta size for %s..%s: ostree %d bytes, rost %d bytes (ratio %.2f)\n' "${c1:0:8}" "${c2:0:8}" "$osize" "$rsize" "$(echo "$rsize / $osize" | bc -l)"
"$rost" repo fsck --repo "$work/client-rost" -q
ostree --repo="$work/client-rost" fsck >/dev/null && echo "ostree fsck of rost's client repo: ok"
ostree --repo="$work/client-rost-delta" fsck >/dev/null && echo "ostree fsck of rost's delta-upgraded repo: ok"
