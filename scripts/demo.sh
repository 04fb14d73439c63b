#!/bin/bash
# The main job: an end-to-end demo of what rost does today.
# Builds rost, makes a sample OS-like tree, commits it into an archive
# repository, inspects it with rost and with the real ostree, checks it out,
# commits an update and shows the diff; then composes RPM packages into a
# bootable commit with `rost compose tree`. Work happens in ./target/demo.
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
step "rost compose tree: RPM packages + a treefile → a bootable OSTree commit"
P=$W/compose; rm -rf "$P"; mkdir -p "$P"/{top/SPECS,repo,updates}
# A tiny OS built with the real rpmbuild: filesystem (passwd/group, /bin → usr/bin),
# a shell (the host's dash and the libraries it loads, so scriptlets really run
# inside the new tree), an app with a %post, and a kernel.
mkrpm() { # NAME VERSION OUTDIR PREAMBLE INSTALL FILES [SCRIPTS]
    cat > "$P/top/SPECS/$1.spec" <<EOF
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
%define _binaries_in_noarch_packages_terminate_build 0
Name: $1
Version: $2
Release: 1
Summary: demo $1
License: MIT
BuildArch: noarch
AutoReqProv: no
$4
%description
demo $1
%install
B=%{buildroot}
$5
%files
$6
${7:-}
EOF
    rpmbuild --quiet --define "_topdir $P/top" --define "_rpmdir $3" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        -bb "$P/top/SPECS/$1.spec"
}
mkrpm demo-filesystem 1 "$P/repo" "" \
    'mkdir -p $B/usr/bin $B/usr/lib $B/usr/lib64 $B/etc $B/usr/lib/modules
ln -s usr/bin $B/bin; ln -s usr/lib $B/lib; ln -s usr/lib64 $B/lib64
printf "root:x:0:0:root:/root:/bin/sh\n" > $B/etc/passwd; printf "root:x:0:\nwheel:x:10:\n" > $B/etc/group
printf "NAME=\"Demo OS\"\nVERSION=\"1\"\nID=demo\nPRETTY_NAME=\"Demo OS 1\"\n" > $B/usr/lib/os-release' \
    '%dir /usr/bin
%dir /usr/lib
%dir /usr/lib64
%dir /usr/lib/modules
/bin
/lib
/lib64
/etc/passwd
/etc/group
/usr/lib/os-release'
shell_install="mkdir -p \$B/usr/bin && cp -L /bin/dash \$B/usr/bin/sh"; shell_files="/usr/bin/sh"
for lib in $(ldd /bin/dash | grep -o '/[^ ]*'); do
    dest=$lib; case $dest in /usr/*) ;; *) dest=/usr$dest;; esac
    shell_install+=$'\n'"mkdir -p \$B$(dirname "$dest") && cp -L $lib \$B$dest"; shell_files+=$'\n'"$dest"
done
mkrpm demo-shell 1 "$P/repo" $'Requires: demo-filesystem\nProvides: /bin/sh' "$shell_install" "$shell_files"
hello_install='mkdir -p $B/usr/bin && printf "#!/bin/sh\necho \"hello from demo-hello %{version}\"\n" > $B/usr/bin/hello && chmod 755 $B/usr/bin/hello'
mkrpm demo-hello 1 "$P/repo" 'Requires(post): demo-shell' "$hello_install" /usr/bin/hello \
    $'%post\necho "installed by %{name} %%post" > /etc/hello.conf'
mkrpm demo-kernel 6.1.0 "$P/repo" 'Requires: demo-filesystem' \
    'mkdir -p $B/usr/lib/modules/6.1.0-demo && echo kernel > $B/usr/lib/modules/6.1.0-demo/vmlinuz && echo initramfs > $B/usr/lib/modules/6.1.0-demo/initramfs.img' \
    $'/usr/lib/modules/6.1.0-demo/vmlinuz\n/usr/lib/modules/6.1.0-demo/initramfs.img'
createrepo_c --quiet "$P/repo"
printf '[demo]\nname=demo\nbaseurl=file://%s\ngpgcheck=0\n' "$P/repo" > "$P/demo.repo"
cat > "$P/demo.yaml" <<'EOF'
ref: demo/${basearch}/os
releasever: 1
repos: [demo]
packages: [demo-hello, demo-kernel]
automatic-version-prefix: "1"
mutate-os-release: "1"
postprocess:
  - echo "composed by rost" > /usr/lib/composed-by
EOF
cat "$P/demo.yaml"
CR=$W/compose-repo
"$ROST" repo init --repo "$CR" --mode archive
"$ROST" compose tree --unified-core --repo "$CR" --cachedir "$P/cache" "$P/demo.yaml"
REF=$(sed -n 's/^ref: //p' "$P/demo.yaml" | sed "s/\${basearch}/$(uname -m)/")
ostree --repo="$CR" show "$REF"
ostree --repo="$CR" show --print-metadata-key=rpmostree.rpmdb.pkglist "$REF"
ostree --repo="$CR" fsck

step "the composed tree: scriptlet output, /var as tmpfiles.d, an rpmdb the real rpm reads"
CO=$W/compose-checkout; rm -rf "$CO"
ostree --repo="$CR" checkout "$REF" "$CO"
cat "$CO/usr/etc/hello.conf" "$CO/usr/lib/composed-by"
grep OSTREE_VERSION "$CO/usr/lib/os-release"
ls "$CO" "$CO/usr/lib/modules/6.1.0-demo"
rpm --root "$CO" --dbpath /usr/lib/sysimage/rpm -qa | sort

step "compose again: unchanged inputs, no new commit"
"$ROST" compose tree --repo "$CR" --cachedir "$P/cache" "$P/demo.yaml"

step "an update: demo-hello 2 in an updates repo; only that package is downloaded and imported"
mkrpm demo-hello 2 "$P/updates" 'Requires(post): demo-shell' "$hello_install" /usr/bin/hello \
    $'%post\necho "installed by %{name} %%post" > /etc/hello.conf'
createrepo_c --quiet "$P/updates"
printf '[updates]\nname=updates\nbaseurl=file://%s\ngpgcheck=0\n' "$P/updates" > "$P/updates.repo"
sed -i 's/^repos: \[demo\]/repos: [demo, updates]/' "$P/demo.yaml"
"$ROST" compose tree --repo "$CR" --cachedir "$P/cache" "$P/demo.yaml"
"$ROST" repo diff --repo "$CR" "$REF^" "$REF"

echo; echo "demo complete: repositories at $R and $CR"
