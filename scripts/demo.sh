#!/bin/bash
# The main job: rost end to end, server and client, on sample packages the
# project builds itself. Builds RPMs of a tiny OS in two releases (one package
# upgraded, one added, one removed), composes release 1, serves it over
# loopback HTTP, deploys it into a fresh sysroot, composes release 2, then
# upgrades (showing the package diff), shows the status, rolls back and shows
# it again. Every command is echoed, so the output doubles as a tutorial.
#
# Usage: scripts/demo.sh            (builds a release rost first)
#        ROST=path/to/rost scripts/demo.sh
# Works as root or not; everything lives in a fresh temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ -z "${ROST:-}" ]; then
    cargo build --release --locked -p rost
    ROST=$PWD/target/release/rost
fi
ROST=$(readlink -f "$ROST")
SAMPLES=$PWD/scripts/sample-packages.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/rost-demo.XXXXXX")
cd "$W"
T0=$(date +%s)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
rost() { "$ROST" "$@"; }
export -f rost; export ROST

SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; true; }
trap cleanup EXIT

step "sample packages: two releases of a tiny OS, built with rpmbuild + createrepo_c"
"$SAMPLES" rpms
ls rpms/base rpms/v1 rpms/v2 | grep -v repodata
run cat rpms/v1.yaml

step "server: compose release 1 into an archive repository"
run rost repo init --repo repo --mode archive
run rost compose tree --repo repo --cachedir cache rpms/v1.yaml
REF=demo/$(uname -m)/os
run rost repo log --repo repo "$REF"

step "serve it over loopback HTTP (any static web server works)"
printf '$ rost serve --repo repo --addr 127.0.0.1:0 &\n'
"$ROST" serve --repo repo --addr 127.0.0.1:0 > /dev/null 2> serve.log &
SERVER=$!
for _ in $(seq 50); do grep -q 'Serving' serve.log 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^Serving .* on //p' serve.log)
echo "serving at $URL"

step "client: a fresh sysroot, release 1 pulled and deployed"
mkdir sysroot
run rost admin init-fs sysroot
run rost admin os-init demo --sysroot sysroot
if [ "$(id -u)" != 0 ]; then
    echo "(not root: the sysroot keeps its objects in a bare-user repository, owners in xattrs)"
    rm -rf sysroot/ostree/repo
    run rost repo init --repo sysroot/ostree/repo --mode bare-user
fi
run rost repo remote add --repo sysroot/ostree/repo --no-gpg-verify demo "$URL"
run rost repo pull --repo sysroot/ostree/repo demo "$REF"
run rost admin deploy --sysroot sysroot --os demo "demo:$REF"
run rost status --sysroot sysroot
DEPLOY1=$(ls -d sysroot/ostree/deploy/demo/deploy/*.0 | head -1)
echo "a local change to /etc, which upgrades carry over:"
run sh -c "echo 'site=local' > $DEPLOY1/etc/site.conf"

step "server: compose release 2 (demo-hello 2, demo-motd added, demo-legacy removed)"
run rost compose tree --repo repo --cachedir cache rpms/v2.yaml

step "client: what would an upgrade bring?"
run rost upgrade --sysroot sysroot --check
run rost upgrade --sysroot sysroot --preview

step "client: upgrade (pull + deploy next to release 1, /etc merged)"
run rost upgrade --sysroot sysroot
run rost status --sysroot sysroot
DEPLOY2=$(ls -d sysroot/ostree/deploy/demo/deploy/* | grep -v "$(basename "$DEPLOY1")" | grep -v '\.origin$' | head -1)
run cat "$DEPLOY2/etc/site.conf" "$DEPLOY2/usr/lib/motd.d/10-demo"
run rost db diff --sysroot sysroot
run ostree admin status --sysroot=sysroot

step "client: roll back to release 1"
run rost rollback --sysroot sysroot
run rost status --sysroot sysroot
run ostree admin status --sysroot=sysroot

T1=$(date +%s)
cat <<EOF

Demo complete in $((T1 - T0)) s. Everything is in $W:
  rpms/          the sample RPM repositories and treefiles (v1.yaml, v2.yaml)
  repo/          the composed archive repository (ref $REF)
  sysroot/       the client sysroot with both releases deployed
Keep going by hand, for example:
  export PATH=$(dirname "$ROST"):\$PATH
  cd $W
  rost status --sysroot sysroot --json
  rost db list --sysroot sysroot demo:$REF
  rost rollback --sysroot sysroot
  rost cleanup --sysroot sysroot -r
(the HTTP server stops with this script; restart it with: rost serve --repo $W/repo --addr ${URL#http://})
EOF
