#!/bin/bash
# Benchmarks the client side: `rost upgrade` against the real `ostree pull` +
# `ostree admin deploy` doing the same work, over nginx on loopback.
#
#   bench/upgrade.sh [DIR]        DIR defaults to /usr/share (~52k files)
#
# Builds a bootable tree (DIR as usr/share, kernel + initramfs, os-release, a
# usr/etc), commits it to an archive repo with an rpmostree.rpmdb.pkglist, and
# serves it with nginx. For each tool, a fresh sysroot gets commit 1 pulled and
# deployed (not timed); then, in the same run:
#   check    no-op `rost upgrade --check` vs `ostree pull --commit-metadata-only`
#            (median of RUNS=5)
#   upgrade  commit 2 changes one "package" (its 40 files under usr/share/bench-pkg
#            and its pkglist entry): `rost upgrade` vs `ostree pull` + `ostree
#            admin deploy --os OS REMOTE:REF` (/etc merged from deployment 1)
# Prints wall times and the rost/ostree ratio per phase.
# Environment: ROST=PATH to skip the build; RUNS=N for the check phase.
set -euo pipefail
src=${1:-/usr/share}
runs=${RUNS:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "bench/upgrade.sh: $*" >&2; exit 1; }
for t in ostree nginx bc; do command -v $t >/dev/null || die "$t not found (scripts/install-deps.sh)"; done
[ "$(id -u)" = 0 ] || die "must run as root (deployments keep file ownership)"
if [ -n "${ROST:-}" ]; then rost=$ROST; else
    (cd "$here" && cargo build --release -p rost >&2)
    rost=${CARGO_TARGET_DIR:-$here/target}/release/rost
fi
mkdir -p "$here/target/bench-tmp"
work=$(mktemp -d "$here/target/bench-tmp/upgrade.XXXXXX")
NGINX_PID=""
cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    for d in "$work"/*/ostree/deploy/*/deploy/*/; do chattr -i "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
[ -n "${BENCH_KEEP:-}" ] || trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree/usr/lib/modules/5.0.0-bench" "$tree/usr/etc/conf.d" "$tree/usr/share"
cp -al "$src"/. "$tree/usr/share/" 2>/dev/null || cp -a "$src"/. "$tree/usr/share/"
head -c 8000000 /dev/urandom > "$tree/usr/lib/modules/5.0.0-bench/vmlinuz"
head -c 30000000 /dev/urandom > "$tree/usr/lib/modules/5.0.0-bench/initramfs.img"
printf 'ID=bench\nPRETTY_NAME="Bench OS"\n' > "$tree/usr/lib/os-release"
for i in $(seq 200); do echo "key$i=1" > "$tree/usr/etc/conf.d/f$i.conf"; done
pkgfiles() { # VERSION: the one package that changes
    rm -rf "$tree/usr/share/bench-pkg"; mkdir -p "$tree/usr/share/bench-pkg"
    for i in $(seq 40); do head -c 20000 /dev/urandom > "$tree/usr/share/bench-pkg/f$i"; echo "$1" >> "$tree/usr/share/bench-pkg/f$i"; done
}
pkglist() { # VERSION
    printf "[('bench-base', '0', '1', '1', 'x86_64'), ('bench-pkg', '0', '%s', '1', 'noarch')]" "$1"
}
nfiles=$(find "$tree" | wc -l)
repo=$work/server
ostree --repo="$repo" init --mode=archive
pkgfiles 1
ostree --repo="$repo" commit -b bench/os --timestamp=2020-01-01T00:00:00Z \
    --add-metadata-string=version=1 --add-metadata="rpmostree.rpmdb.pkglist=$(pkglist 1)" "$tree" >/dev/null

# nginx on loopback
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<EOF
user root; worker_processes 1; error_log $work/nginx/error.log; pid $work/nginx/nginx.pid;
events { worker_connections 256; }
http { access_log off; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  default_type application/octet-stream; keepalive_requests 100000;
  server { listen 127.0.0.1:$port; root $repo; } }
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:$port

secs() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A T
for tool in ostree rost; do
    s=$work/$tool
    mkdir -p "$s"
    ostree admin init-fs "$s" >/dev/null
    ostree admin os-init --sysroot="$s" bench >/dev/null
    ostree --repo="$s/ostree/repo" remote add --no-gpg-verify bench "$url"
    ostree --repo="$s/ostree/repo" pull bench bench/os >/dev/null
    ostree admin deploy --sysroot="$s" --os=bench --karg=root=LABEL=root bench:bench/os >/dev/null
    d=$(ls -d "$s"/ostree/deploy/bench/deploy/*.0)
    echo local > "$d/etc/conf.d/f1.conf"
done
sync

# check: nothing new on the server
for tool in ostree rost; do
    s=$work/$tool
    for _ in $(seq "$runs"); do
        t0=$(secs)
        if [ $tool = ostree ]; then
            ostree --repo="$s/ostree/repo" pull --commit-metadata-only bench bench/os >/dev/null
        else
            "$rost" upgrade --sysroot "$s" --check >/dev/null 2>&1
        fi
        t1=$(secs)
        echo "$t1 - $t0" | bc
    done | median > "$work/check-$tool"
    T[$tool-check]=$(cat "$work/check-$tool")
done

# upgrade: one package changed
pkgfiles 2
ostree --repo="$repo" commit -b bench/os --timestamp=2020-01-02T00:00:00Z \
    --add-metadata-string=version=2 --add-metadata="rpmostree.rpmdb.pkglist=$(pkglist 2)" "$tree" >/dev/null
sync
for tool in ostree rost; do
    s=$work/$tool
    t0=$(secs)
    if [ $tool = ostree ]; then
        ostree --repo="$s/ostree/repo" pull bench bench/os >/dev/null
        ostree admin deploy --sysroot="$s" --os=bench bench:bench/os >/dev/null
    else
        "$rost" upgrade --sysroot "$s" > "$work/rost-upgrade.out" 2>/dev/null
    fi
    t1=$(secs)
    T[$tool-upgrade]=$(echo "$t1 - $t0" | bc)
    n=$(ostree admin status --sysroot="$s" | grep -c '^  bench ')
    [ "$n" = 2 ] || die "$tool: expected 2 deployments, status shows $n"
done
grep -q 'bench-pkg 1-1 -> 2-1' "$work/rost-upgrade.out" || die "rost upgrade did not report the package diff"
[ "$(ostree admin status --sysroot="$work/ostree")" = "$("$rost" admin status --sysroot="$work/rost")" ] \
    || die "status differs between the tools"

echo "upgrade of a $nfiles-entry tree ($(du -sh "$src" | cut -f1) from $src) over nginx, same run:"
for phase in check upgrade; do
    o=${T[ostree-$phase]} r=${T[rost-$phase]}
    printf '  %-8s ostree %6.3fs   rost %6.3fs   ratio rost/ostree %.2f\n' \
        "$phase" "$o" "$r" "$(echo "$r / $o" | bc -l)"
done
