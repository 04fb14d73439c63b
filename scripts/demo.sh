#!/bin/bash
# The main job: an end-to-end demo of what rost does today.
# Builds rost, makes a sample OS-like tree, commits it into an archive
# repository, inspects it with rost and with the real ostree, checks it out,
# commits an update and shows the diff. Work happens in ./target/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --locked -p rost
ROST=$PWD/target/release/rost
W=$PWD/target/demo
rm -rf "$W" && mkdir -p "$W"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a sample root filesystem"
T=$W/rootfs
mkdir -p "$T"/usr/{bin,lib/os-release.d,share/doc/demo} "$T"/usr/etc
printf '#!/bin/sh\necho "hello from rost"\n' > "$T/usr/bin/hello"; chmod 755 "$T/usr/bin/hello"
printf 'NAME="Demo OS"\nVERSION_ID=1\n' > "$T/usr/lib/os-release"
ln -s ../lib/os-release "$T/usr/etc/os-release"
echo "demo docs" > "$T/usr/share/doc/demo/README"
find "$T" | sort | sed "s|$W/||"

step "rost repo init + commit (archive mode, as served over HTTP)"
R=$W/repo
"$ROST" repo init --repo "$R" --mode archive
C1=$("$ROST" repo commit --repo "$R" -b demo/x86_64 -s "Demo OS 1" --add-metadata-string version=1 "$T")
echo "commit $C1"

step "the real ostree reads it"
ostree --repo="$R" show demo/x86_64
ostree --repo="$R" ls -R demo/x86_64
ostree --repo="$R" fsck

step "an update: new binary, changed os-release"
printf '#!/bin/sh\necho "a new tool"\n' > "$T/usr/bin/newtool"; chmod 755 "$T/usr/bin/newtool"
printf 'NAME="Demo OS"\nVERSION_ID=2\n' > "$T/usr/lib/os-release"
C2=$("$ROST" repo commit --repo "$R" -b demo/x86_64 -s "Demo OS 2" --add-metadata-string version=2 "$T")
"$ROST" repo log --repo "$R" demo/x86_64
"$ROST" repo diff --repo "$R" "$C1" "$C2"

step "check out the new tree and run it"
"$ROST" repo checkout --repo "$R" demo/x86_64 "$W/checkout"
"$W/checkout/usr/bin/hello"
"$W/checkout/usr/bin/newtool"

step "rost fsck"
"$ROST" repo fsck --repo "$R"
echo; echo "demo complete: repository at $R"
