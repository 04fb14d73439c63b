#!/bin/bash
# Builds the project's sample OS as real RPMs (rpmbuild + createrepo_c) and the
# treefiles of two releases of it, for the demo and the client tests.
#
#   OUT/base/      demo-filesystem, demo-shell (the host's dash + its libraries,
#                  so scriptlets really run inside the tree), demo-kernel
#   OUT/v1/        demo-hello 1, demo-legacy 1
#   OUT/v2/        demo-hello 2 (upgraded), demo-motd 1 (added); demo-legacy is gone
#   OUT/*.repo     dnf-style .repo files for the three repositories
#   OUT/v1.yaml    treefile of release 1; OUT/v2.yaml of release 2 (same ref)
#
# Usage: scripts/sample-packages.sh OUT        (OUT must not exist or be empty)
set -euo pipefail
OUT=${1:?usage: sample-packages.sh OUT}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TOP=$OUT/.rpmbuild
mkdir -p "$TOP/SPECS" "$OUT"/{base,v1,v2}

mkrpm() { # NAME VERSION OUTDIR PREAMBLE INSTALL FILES [SCRIPTS]
    cat > "$TOP/SPECS/$1-$2.spec" <<EOF
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
%define _binaries_in_noarch_packages_terminate_build 0
%define source_date_epoch_from_changelog 0
%define use_source_date_epoch_as_buildtime 1
%define clamp_mtime_to_source_date_epoch 1
Name: $1
Version: $2
Release: 1
Summary: sample package $1
License: MIT
BuildArch: noarch
AutoReqProv: no
$4
%description
Sample package $1 of the rost demo OS.
%install
B=%{buildroot}
$5
%files
$6
${7:-}
EOF
    SOURCE_DATE_EPOCH=1700000000 rpmbuild --quiet --define "_topdir $TOP" --define "_rpmdir $3" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        -bb "$TOP/SPECS/$1-$2.spec"
}

mkrpm demo-filesystem 1 "$OUT/base" "" \
    'mkdir -p $B/usr/bin $B/usr/lib $B/usr/lib64 $B/etc $B/usr/lib/modules
ln -s usr/bin $B/bin; ln -s usr/lib $B/lib; ln -s usr/lib64 $B/lib64
printf "root:x:0:0:root:/root:/bin/sh\n" > $B/etc/passwd; printf "root:x:0:\nwheel:x:10:\n" > $B/etc/group
printf "NAME=\"Demo OS\"\nID=demo\nPRETTY_NAME=\"Demo OS\"\n" > $B/usr/lib/os-release' \
    '%dir /usr/bin
%dir /usr/lib
%dir /usr/lib64
%dir /usr/lib/modules
/bin
/lib
/lib64
%config /etc/passwd
%config /etc/group
/usr/lib/os-release'

shell_install="mkdir -p \$B/usr/bin && cp -L /bin/dash \$B/usr/bin/sh"; shell_files="/usr/bin/sh"
for lib in $(ldd /bin/dash | grep -o '/[^ ]*'); do
    dest=$lib; case $dest in /usr/*) ;; *) dest=/usr$dest;; esac
    shell_install+=$'\n'"mkdir -p \$B$(dirname "$dest") && cp -L $lib \$B$dest"; shell_files+=$'\n'"$dest"
done
mkrpm demo-shell 1 "$OUT/base" $'Requires: demo-filesystem\nProvides: /bin/sh' "$shell_install" "$shell_files"

mkrpm demo-kernel 6.1.0 "$OUT/base" 'Requires: demo-filesystem' \
    'mkdir -p $B/usr/lib/modules/6.1.0-demo && echo "demo kernel" > $B/usr/lib/modules/6.1.0-demo/vmlinuz && echo "demo initramfs" > $B/usr/lib/modules/6.1.0-demo/initramfs.img' \
    $'/usr/lib/modules/6.1.0-demo/vmlinuz\n/usr/lib/modules/6.1.0-demo/initramfs.img'

for v in 1 2; do
    mkrpm demo-hello $v "$OUT/v$v" 'Requires(post): demo-shell' \
        'mkdir -p $B/usr/bin $B/etc && printf "#!/bin/sh\necho \"hello from demo-hello %{version}\"\n" > $B/usr/bin/hello && chmod 755 $B/usr/bin/hello
echo "greeting=hello %{version}" > $B/etc/hello.conf' \
        $'/usr/bin/hello\n%config(noreplace) /etc/hello.conf' \
        $'%post\necho "configured by %{name}-%{version} %%post" > /usr/lib/hello-post.txt'
done
mkrpm demo-legacy 1 "$OUT/v1" 'Requires: demo-filesystem' \
    'mkdir -p $B/usr/share/legacy && echo "retired in release 2" > $B/usr/share/legacy/README' \
    /usr/share/legacy/README
mkrpm demo-motd 1 "$OUT/v2" 'Requires: demo-filesystem' \
    'mkdir -p $B/usr/lib/motd.d && echo "Welcome to Demo OS 2" > $B/usr/lib/motd.d/10-demo' \
    /usr/lib/motd.d/10-demo

for r in base v1 v2; do
    createrepo_c --quiet "$OUT/$r"
    printf '[demo-%s]\nname=demo %s\nbaseurl=file://%s\ngpgcheck=0\n' "$r" "$r" "$OUT/$r" > "$OUT/demo-$r.repo"
done
for v in 1 2; do
    extra=demo-legacy; [ $v = 2 ] && extra=demo-motd
    cat > "$OUT/v$v.yaml" <<EOF
ref: demo/\${basearch}/os
releasever: $v
repos: [demo-base, demo-v$v]
packages: [demo-kernel, demo-hello, $extra]
automatic-version-prefix: "$v"
mutate-os-release: "$v"
EOF
done
rm -rf "$TOP"
