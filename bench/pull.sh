#!/bin/bash
# Benchmarks `rost repo pull` against `ostree pull` over real nginx on loopback.
#
#   bench/pull.sh [DIR]        DIR defaults to /usr/share
#
# Builds an archive repo of DIR (commit 1) and of DIR plus a changed file set
# (commit 2), serves it with nginx on 127.0.0.1, then in the same run pulls
# commit 1 into fresh bare-user repos with each tool (full pull), and the
# upgrade 1 → 2 (objects path). Prints wall time, bytes served and ratios.
# Environment: ROST=PATH to skip the build.
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
cleanup() { [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "building the served repo from $src" >&2
srv=$work/served
"$rost" repo init --repo "$srv" --mode archive
c1=$("$rost" repo commit --repo "$srv" -b os --timestamp=2020-01-01T00:00:00Z "$src")
tree2=$work/tree2
mkdir -p "$tree2"
cp -a "$src" "$tree2/" 2>/dev/null || true
# The upgrade: 2% of the files rewritten, plus a new directory.
find "$tree2" -type f | awk 'NR % 50 == 0' | while read -r f; do printf 'changed %s\n' "$f" >> "$f"; done
mkdir -p "$tree2/new" && head -c 5000000 /dev/urandom > "$tree2/new/blob"
c2=$("$rost" repo commit --repo "$srv" -b os --timestamp=2020-02-01T00:00:00Z "$tree2")
"$rost" repo summary --repo "$srv" -u
echo "commit 1 $c1, commit 2 $c2" >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
user root; worker_processes 2; error_log $work/nginx/error.log; pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http { access_log $work/nginx/access.log; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  default_type application/octet-stream; keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $srv; } }
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:$port

served_bytes() { awk '{s += $10} END {print s+0}' "$work/nginx/access.log"; }

# measure TOOL PHASE: sets secs and bytes.
measure() {
    local tool=$1 phase=$2 repo=$work/client-$1 t0 t1 b0
    if [ "$phase" = full ]; then
        rm -rf "$repo"
        if [ "$tool" = ostree ]; then
            ostree --repo="$repo" init --mode=bare-user
            ostree --repo="$repo" remote add --no-gpg-verify origin "$url"
        else
            "$rost" repo init --repo "$repo" --mode bare-user
            "$rost" repo remote add --repo "$repo" --no-gpg-verify origin "$url"
        fi
        rev=$c1
    else
        rev=$c2
    fi
    b0=$(served_bytes); t0=$(date +%s.%N)
    if [ "$tool" = ostree ]; then
        ostree --repo="$repo" pull origin os@"$rev" >/dev/null 2>&1 || ostree --repo="$repo" pull --disable-static-deltas origin "$rev" >/dev/null
    else
        "$rost" repo pull --repo "$repo" origin "$rev" 2>/dev/null
    fi
    t1=$(date +%s.%N)
    secs=$(echo "$t1 - $t0" | bc); bytes=$(( $(served_bytes) - b0 ))
}

printf '%-8s %-10s %10s %14s\n' phase tool seconds bytes
for phase in full upgrade; do
    measure ostree $phase; o_s=$secs; o_b=$bytes
    printf '%-8s %-10s %10.2f %14d\n' $phase ostree "$o_s" "$o_b"
    measure rost $phase; r_s=$secs; r_b=$bytes
    printf '%-8s %-10s %10.2f %14d\n' $phase rost "$r_s" "$r_b"
    printf '%-8s ratio rost/ostree: time %.2f, bytes %.2f\n' $phase "$(echo "$r_s / $o_s" | bc -l)" "$(echo "$r_b / ($o_b + 0.000001)" | bc -l)"
done
"$rost" repo fsck --repo "$work/client-rost" -q
ostree --repo="$work/client-rost" fsck >/dev/null && echo "ostree fsck of rost's client repo: ok"
