#!/bin/bash
# Benchmarks `rost compose tree` against the status-quo pipeline
# (`dnf --installroot` + `ostree commit`) on a realistic package set.
#
#   bench/compose.sh
#
# Environment:
#   N=300          how many of this machine's Debian packages to turn into RPMs
#   ROST=PATH      use this rost binary instead of building one
#   CARGO_TARGET_DIR  where `cargo build --release -p rost` puts the binary
#   KEEP=1         keep the work directory (target/bench-tmp/compose.XXXXXX)
#   REUSE=DIR      reuse the RPMs of a work directory kept by KEEP=1 (setup
#                  skipped; its repos and caches are made anew; kept afterwards)
#
# Setup (not timed): bench/debs-to-rpms.sh turns up to N installed Debian
# packages into RPMs with their real file lists and their Depends mapped to
# Requires among the set, and createrepo_c makes a repo of them.
# Timed, in one run:
#   cold   rost:  rost compose tree into a fresh archive repo and cachedir
#          peer:  dnf --installroot of the same set from the same repo, then
#                 ostree commit of that root into a fresh archive repo
#   incremental:  one package rebuilt with a bumped release, createrepo_c
#                 re-run, rost compose tree again with the same repo/cachedir
# Prints wall times and the ratios cold rost/peer (goal <= 0.5) and
# incremental rost/rost cold (goal <= 0.1), then the CPU time (user+sys) of
# each and the load average: on a shared machine wall times swing with the
# load, CPU times much less. The page cache is warm for both.
set -euo pipefail

n=${N:-300}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "bench/compose.sh: $*" >&2; exit 1; }

for tool in rpmbuild createrepo_c dnf ostree python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
command -v dpkg-query >/dev/null || die "dpkg-query not found: the package set comes from a Debian system"

if [ -n "${ROST:-}" ]; then
    rost=$ROST
else
    (cd "$here" && cargo build --release -p rost >&2)
    rost=${CARGO_TARGET_DIR:-$here/target}/release/rost
fi
[ -x "$rost" ] || die "no rost binary at $rost"

tmp_parent=$here/target/bench-tmp
mkdir -p "$tmp_parent"
if [ -n "${REUSE:-}" ]; then
    work=$(cd "$REUSE" && pwd)
    [ -d "$work/rpms" ] && [ -d "$work/top/SPECS" ] || die "$REUSE holds no RPMs of an earlier run"
    rm -rf "$work/rost-repo" "$work/rost-cache" "$work/peer-repo" "$work/peer-root" "$work/peer-cache"
    # Undo the earlier run's rebuild: back to release 1 only.
    for spec in $(grep -l '^Release: 2$' "$work"/top/SPECS/*.spec 2>/dev/null); do
        name=$(basename "$spec" .spec)
        sed -i 's/^Release: .*/Release: 1/' "$spec"
        rm -f "$work/rpms/$name"-*-2.noarch.rpm
    done
    createrepo_c --quiet --update "$work/rpms"
    trap 'echo "kept $work" >&2' EXIT
else
    work=$(mktemp -d "$tmp_parent/compose.XXXXXX")
fi
if [ -n "${REUSE:-}" ]; then
    :
elif [ "${KEEP:-}" = 1 ]; then
    trap 'echo "kept $work" >&2' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" "$1" "$2"; }
# cpu NAME CMD...: runs CMD, recording its user+sys CPU seconds (children
# included) in $work/NAME.cpu.
cpu() { local name=$1; shift; /usr/bin/time -f '%U %S' -o "$work/$name.cpu" "$@"; }
cpus() { python3 -c "import sys; print(f'{sum(float(x) for f in sys.argv[1:] for x in open(f).read().split()[-2:]):.2f}')" "$@"; }

rpms=$work/rpms
if [ -z "${REUSE:-}" ]; then
    echo "== setup: $n Debian packages -> RPMs (not timed)" >&2
    "$here/bench/debs-to-rpms.sh" "$work" "$n"
    createrepo_c --quiet "$rpms"
fi
count=$(ls "$rpms"/*.rpm | wc -l)
[ "$count" -gt 0 ] || die "no RPMs were built"
names=$(rpm -qp --qf '%{NAME}\n' "$rpms"/*.rpm 2>/dev/null | sort -u)
files=$(rpm -qlp "$rpms"/*.rpm 2>/dev/null | wc -l)
echo "$count RPMs, $files file entries, $(du -sh "$rpms" | cut -f1) of RPMs" >&2
echo "warming the page cache" >&2
cat "$rpms"/*.rpm >/dev/null

# Treefile and .repo for rost; the same .repo serves dnf.
cfg=$work/config
mkdir -p "$cfg"
printf '[bench]\nname=bench\nbaseurl=file://%s\ngpgcheck=0\n' "$rpms" >"$cfg/bench.repo"
{
    echo "ref: bench/\${basearch}/os"
    echo "repos: [bench]"
    echo "packages:"
    for name in $names; do echo "  - $name"; done
} >"$cfg/bench.yaml"

run_rost() { # LOG
    cpu "$(basename "$1" .log)" "$rost" compose tree --unified-core --repo "$work/rost-repo" --cachedir "$work/rost-cache" \
        "$cfg/bench.yaml" >"$1" 2>&1 || { cat "$1" >&2; die "rost compose tree failed"; }
}

echo "== cold: rost compose tree" >&2
"$rost" repo init --repo "$work/rost-repo" --mode archive
sync
t0=$(now); run_rost "$work/rost-cold.log"; t1=$(now)
rost_cold=$(secs "$t0" "$t1")
tail -3 "$work/rost-cold.log" >&2

echo "== cold: dnf --installroot + ostree commit" >&2
ostree --repo="$work/peer-repo" init --mode=archive
root=$work/peer-root
mkdir -p "$root"
sync
t0=$(now)
# shellcheck disable=SC2086
cpu peer-dnf dnf --installroot="$root" --setopt=reposdir="$cfg" --setopt=cachedir="$work/peer-cache" \
    --setopt=install_weak_deps=False --setopt=keepcache=True --nogpgcheck --releasever=1 \
    --disablerepo='*' --enablerepo=bench -y -q install $names >"$work/peer-dnf.log" 2>&1 \
    || { cat "$work/peer-dnf.log" >&2; die "dnf install failed"; }
t_mid=$(now)
cpu peer-commit ostree --repo="$work/peer-repo" commit -b bench/os --no-xattrs "$root" >"$work/peer-commit.log" \
    || die "ostree commit failed"
t1=$(now)
peer_dnf=$(secs "$t0" "$t_mid")
peer_commit=$(secs "$t_mid" "$t1")
peer_cold=$(secs "$t0" "$t1")

echo "== incremental: one package rebuilt with a bumped release" >&2
changed=$(for name in $names; do echo "$name"; done | python3 -c "
import sys
names = [l.strip() for l in sys.stdin if l.strip()]
print(names[len(names) // 2])")
"$here/bench/debs-to-rpms.sh" "$work" rebuild "$changed" 2
createrepo_c --quiet --update "$rpms"
sync
t0=$(now); run_rost "$work/rost-inc.log"; t1=$(now)
rost_inc=$(secs "$t0" "$t1")
tail -3 "$work/rost-inc.log" >&2
ref=bench/$(uname -m)/os
ostree --repo="$work/rost-repo" show --print-metadata-key=rpmostree.rpmdb.pkglist "$ref" \
    | grep -q "'$changed', '[^']*', '[^']*', '2'" || die "incremental commit does not hold $changed release 2"

echo
echo "packages: $count ($files file entries); changed for incremental: $changed"
echo "cold   rost compose tree:              ${rost_cold}s"
echo "cold   dnf --installroot + ostree:     ${peer_cold}s (dnf ${peer_dnf}s, ostree commit ${peer_commit}s)"
echo "incr.  rost compose tree:              ${rost_inc}s"
echo "ratio  cold rost/peer:                 $(ratio "$rost_cold" "$peer_cold") (goal <= 0.5)"
echo "ratio  incremental rost/rost cold:     $(ratio "$rost_inc" "$rost_cold") (goal <= 0.1)"
rost_cold_cpu=$(cpus "$work/rost-cold.cpu")
peer_cpu=$(cpus "$work/peer-dnf.cpu" "$work/peer-commit.cpu")
echo "cpu    (user+sys) rost cold ${rost_cold_cpu}s, peer ${peer_cpu}s (dnf $(cpus "$work/peer-dnf.cpu")s), rost incr. $(cpus "$work/rost-inc.cpu")s"
echo "load   $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(nproc) CPUs"
