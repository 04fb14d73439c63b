#!/bin/bash
# Turns this machine's installed Debian packages into RPMs with their real
# file lists, for bench/compose.sh.
#
#   bench/debs-to-rpms.sh WORKDIR N          build up to N packages into WORKDIR/rpms
#   bench/debs-to-rpms.sh WORKDIR rebuild NAME RELEASE
#                                            rebuild one of them with another release
#
# Each RPM holds the package's files as listed in /var/lib/dpkg/info/*.list
# (contents copied from the live system): regular files, symlinks and
# directories under /usr, /etc and /var (/bin, /sbin, /lib* are mapped into
# /usr, as on a merged-/usr system); regular files under /var are left out
# (composes turn /var into tmpfiles.d entries), as is anything not readable or
# whose path has characters %files cannot take. Packages without a regular
# file left, or over 30 MB, are skipped. Debian Depends/Pre-Depends become
# Requires on package names, among the packages of the set only: version
# constraints and arch qualifiers are dropped, an alternative maps to its first
# member in the set, and a group with no member in the set is dropped.
# Specs go to WORKDIR/top/SPECS, RPMs (noarch, zstd level 3) to WORKDIR/rpms;
# builds run two at a time.
set -euo pipefail

work=${1:?usage: debs-to-rpms.sh WORKDIR N | WORKDIR rebuild NAME RELEASE}
mkdir -p "$work" && work=$(cd "$work" && pwd)
mode=${2:?usage: debs-to-rpms.sh WORKDIR N | WORKDIR rebuild NAME RELEASE}
top=$work/top
rpms=$work/rpms
mkdir -p "$top/SPECS" "$top/FILELISTS" "$rpms"

build() { # SPEC
    rpmbuild --quiet --define "_topdir $top" --define "_rpmdir $rpms" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        -bb "$1" >"$1.log" 2>&1 || { echo "debs-to-rpms: rpmbuild failed for $1 (see $1.log)" >&2; return 1; }
}
export -f build
export top rpms

if [ "$mode" = rebuild ]; then
    name=${3:?NAME}; release=${4:?RELEASE}
    spec=$top/SPECS/$name.spec
    [ -f "$spec" ] || { echo "debs-to-rpms: no spec for $name" >&2; exit 1; }
    sed -i "s/^Release: .*/Release: $release/" "$spec"
    build "$spec"
    exit 0
fi

n=$mode
python3 - "$top" "$n" <<'PY'
import os, re, stat, subprocess, sys

top, limit = sys.argv[1], int(sys.argv[2])
out = subprocess.run(
    ["dpkg-query", "-W", "-f=${Package}\t${Architecture}\t${Version}\t${Pre-Depends}\t${Depends}\n"],
    check=True, capture_output=True, text=True).stdout
info = "/var/lib/dpkg/info"
bad = re.compile(r'[\s%*?\[\]{}"\'\\,]')
MAX = 30_000_000

def listfile(pkg, arch):
    for cand in (f"{pkg}:{arch}.list", f"{pkg}.list"):
        p = os.path.join(info, cand)
        if os.path.exists(p):
            return p
    return None

def mapped(path):
    for old in ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"):
        if path.startswith(old) or path == old[:-1]:
            return "/usr" + path
    return path

chosen = {}  # name -> (version, deps, [(kind, path)])
seen = set()
for line in out.splitlines():
    pkg, arch, ver, pre, deps = (line.split("\t") + [""] * 5)[:5]
    if pkg in seen or len(chosen) >= limit:
        continue
    seen.add(pkg)
    lf = listfile(pkg, arch)
    if not lf:
        continue
    entries, size, ok = {}, 0, True
    with open(lf, errors="replace") as f:
        for raw in f:
            p = mapped(raw.rstrip("\n"))
            if p in ("", "/.", "/") or bad.search(p) or not p.startswith(("/usr/", "/etc/", "/var/")):
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                kind = "l"
            elif stat.S_ISREG(st.st_mode):
                if p.startswith("/var/"):
                    continue
                if not os.access(p, os.R_OK):
                    ok = False
                    break
                kind = "f"
                size += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                if not os.access(p, os.R_OK | os.X_OK):
                    ok = False
                    break
                kind = "d"
            else:
                continue
            entries[p] = kind
    if not ok or size > MAX or "f" not in entries.values():
        continue
    chosen[pkg] = (ver, pre + ("," if pre and deps else "") + deps, entries)

def requires(deps):
    reqs = []
    for group in deps.split(","):
        for alt in group.split("|"):
            name = alt.strip().split(" ")[0].split("(")[0].split(":")[0]
            if name in chosen:
                if name not in reqs:
                    reqs.append(name)
                break
    return reqs

ndeps = 0
for pkg, (ver, deps, entries) in chosen.items():
    rver = re.sub(r"[^A-Za-z0-9._+~]", ".", ver.split(":", 1)[-1])
    reqs = [r for r in requires(deps) if r != pkg]
    ndeps += len(reqs)
    paths = sorted(entries)
    with open(os.path.join(top, "FILELISTS", pkg), "w") as f:
        f.write("\n".join(p[1:] for p in paths) + "\n")
    with open(os.path.join(top, "SPECS", pkg + ".spec"), "w") as f:
        f.write(f"""%define debug_package %{{nil}}
%global __os_install_post %{{nil}}
%define _build_id_links none
%define _binaries_in_noarch_packages_terminate_build 0
%define _unpackaged_files_terminate_build 0
%define _binary_payload w3.zstdio
Name: {pkg}
Version: {rver}
Release: 1
Summary: {pkg} from the Debian system
License: Various
BuildArch: noarch
AutoReqProv: no
""")
        for r in reqs:
            f.write(f"Requires: {r}\n")
        f.write(f"""%description
{pkg} {ver}, repackaged from the live system.
%install
mkdir -p %{{buildroot}}
tar -C / --no-recursion -cf - -T {top}/FILELISTS/{pkg} | tar -C %{{buildroot}} -xf -
%files
""")
        for p in paths:
            f.write(("%dir " if entries[p] == "d" else "") + p + "\n")
print(f"debs-to-rpms: {len(chosen)} packages, {ndeps} requires", file=sys.stderr)
PY
ls "$top"/SPECS/*.spec | xargs -P2 -I{} bash -c 'build "$1"' _ {}
