#!/bin/bash
# Installs the Debian packages rost's demo and tests need, when missing.
# Safe to run repeatedly; needs root (or sudo) on a fresh Debian 12 machine.
set -euo pipefail
need=()
for pair in ostree:ostree getfattr:attr rpm:rpm rpmbuild:rpm createrepo_c:createrepo-c \
            script:bsdutils gpgv:gpgv gpg:gpg dnf:dnf bwrap:bubblewrap cpio:cpio rpm2cpio:rpm2cpio lz4:lz4 nginx:nginx-light \
            setpriv:util-linux chattr:e2fsprogs bc:bc; do
    tool=${pair%%:*}; pkg=${pair#*:}
    command -v "$tool" >/dev/null 2>&1 || need+=("$pkg")
done
# bench/commit.sh measures with GNU time (`time` alone is the shell keyword).
[ -x /usr/bin/time ] || need+=(time)
# libostree's installed test suite, run against rost as `ostree` (bench/conformance.sh).
[ -d /usr/libexec/installed-tests/libostree ] || need+=(ostree-tests)
command -v gnome-desktop-testing-runner >/dev/null 2>&1 || need+=(gnome-desktop-testing)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing: ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
