#!/bin/bash
# Benchmarks `rost admin deploy` against `ostree admin deploy`.
#
#   bench/deploy.sh [DIR]        DIR defaults to /usr/share (~52k files)
#
# Builds a bootable tree (DIR as usr/share, a kernel and initramfs under
# usr/lib/modules, os-release, a usr/etc) and commits it (plus an upgrade
# commit) once; then for each tool, in the same run: a fresh sysroot (init-fs,
# os-init), the commits pulled into its repo (not timed), and the timed phases:
#   deploy   first deployment of commit 1 (hardlinked checkout, /etc, boot)
#   upgrade  deployment of commit 2 with the /etc merge from deployment 1
# Prints wall times and the rost/ostree ratio per phase.
# Environment: ROST=PATH to skip the build.
set -euo pipefail
src=${1:-/usr/share}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "bench/deploy.sh: $*" >&2; exit 1; }
command -v ostree >/dev/null || die "ostree not found (scripts/install-deps.sh)"
[ "$(id -u)" = 0 ] || die "must run as root (deployments keep file ownership)"
if [ -n "${ROST:-}" ]; then rost=$ROST; else
    (cd "$here" && cargo build --release -p rost >&2)
    rost=${CARGO_TARGET_DIR:-$here/target}/release/rost
fi
mkdir -p "$here/target/bench-tmp"
work=$(mktemp -d "$here/target/bench-tmp/deploy.XXXXXX")
cleanup() {
    # Deployment roots carry the immutable bit (as ostree sets it).
    for d in "$work"/*/ostree/deploy/*/deploy/*/; do chattr -i "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
[ -n "${BENCH_KEEP:-}" ] || trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree/usr/lib/modules/5.0.0-bench" "$tree/usr/etc/conf.d"
# Same filesystem: hardlink the tree in (the commit reads it, nothing writes it).
cp -al "$src" "$tree/usr/share" 2>/dev/null || cp -a "$src" "$tree/usr/share"
head -c 8000000 /dev/urandom > "$tree/usr/lib/modules/5.0.0-bench/vmlinuz"
head -c 30000000 /dev/urandom > "$tree/usr/lib/modules/5.0.0-bench/initramfs.img"
printf 'ID=bench\nPRETTY_NAME="Bench OS"\n' > "$tree/usr/lib/os-release"
for i in $(seq 200); do echo "key$i=1" > "$tree/usr/etc/conf.d/f$i.conf"; done
nfiles=$(find "$tree" | wc -l)
# Commit 1 = the tree; commit 2 = commit 1 plus a changed /etc default.
src_repo=$work/src-repo
ostree --repo="$src_repo" init --mode=bare
ostree --repo="$src_repo" commit -b bench/1 --timestamp=2020-01-01T00:00:00Z \
    --add-metadata-string=version=1 "$tree" >/dev/null
mkdir -p "$work/overlay/usr/etc/conf.d" && echo upgrade > "$work/overlay/usr/etc/conf.d/f2.conf"
ostree --repo="$src_repo" commit -b bench/2 --timestamp=2020-01-02T00:00:00Z \
    --add-metadata-string=version=2 --tree=ref=bench/1 --tree=dir="$work/overlay" >/dev/null

secs() { date +%s.%N; }
declare -A T
for tool in ostree rost; do
    s=$work/$tool
    mkdir -p "$s"
    if [ $tool = ostree ]; then adm=(ostree admin); else adm=("$rost" admin); fi
    "${adm[@]}" init-fs "$s" >/dev/null
    "${adm[@]}" os-init --sysroot="$s" bench >/dev/null
    ostree --repo="$s/ostree/repo" pull-local "$src_repo" bench/1 bench/2 >/dev/null
    sync
    t0=$(secs)
    "${adm[@]}" deploy --sysroot="$s" --os=bench --karg=root=LABEL=root bench/1 >/dev/null
    t1=$(secs)
    T[$tool-deploy]=$(echo "$t1 - $t0" | bc)
    d=$(ls -d "$s"/ostree/deploy/bench/deploy/*.0)
    echo local > "$d/etc/conf.d/f1.conf"
    sync
    t0=$(secs)
    "${adm[@]}" deploy --sysroot="$s" --os=bench bench/2 >/dev/null
    t1=$(secs)
    T[$tool-upgrade]=$(echo "$t1 - $t0" | bc)
    n=$(ostree admin status --sysroot="$s" | grep -c '^  bench ')
    [ "$n" = 2 ] || die "$tool: expected 2 deployments, status shows $n"
done

echo "deploy of a $nfiles-entry tree ($(du -sh "$src" | cut -f1) from $src), same run:"
for phase in deploy upgrade; do
    o=${T[ostree-$phase]} r=${T[rost-$phase]}
    printf '  %-8s ostree %6.2fs   rost %6.2fs   ratio rost/ostree %.2f\n' \
        "$phase" "$o" "$r" "$(echo "$r / $o" | bc -l)"
done
# Both sysroots must describe the same boot configuration.
diff -r --no-dereference "$work/ostree/boot" "$work/rost/boot" >/dev/null \
    || die "boot/ differs between the tools"
[ "$(ostree admin status --sysroot="$work/ostree")" = "$("$rost" admin status --sysroot="$work/rost")" ] \
    || die "status differs between the tools"
