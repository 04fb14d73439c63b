#!/bin/bash
# Solver benchmark: Debian's apt package index converted to rpm-md, resolved by
# rost and by dnf in the same run. Prints both wall times and the ratio for
# (1) loading metadata (a one-package request) and (2) a large request
# (every Priority: required/important/standard package), and whether the
# resolved NEVRA sets agree. Each phase runs twice per tool:
# - cold: empty cache directory (dnf parses the XML and writes its .solv files;
#   rost parses the XML and writes its package cache);
# - warm: the same cache directory again (dnf with --cacheonly reads its .solv
#   files; rost checks repomd's checksum and reads its package cache).
#
# Usage: [RUNS=3] [KEEP=1] bench/solve.sh [path/to/rost]   (default: builds target/release/rost)
set -euo pipefail
cd "$(dirname "$0")/.."
ROST=${1:-}
if [ -z "$ROST" ]; then
    cargo build --release -p rost >&2
    ROST=${CARGO_TARGET_DIR:-target}/release/rost
fi
command -v dnf >/dev/null || { echo "dnf is required" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/rost-bench.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT

# --- Convert apt Packages indexes to rpm-md -------------------------------
mkdir -p "$WORK/repo/repodata"
for f in /var/lib/apt/lists/*binary-amd64_Packages*; do
    case "$f" in
        *.lz4) lz4 -dc "$f" ;;
        *.gz) zcat "$f" ;;
        *.xz) xzcat "$f" ;;
        *) cat "$f" ;;
    esac
done > "$WORK/Packages"
python3 - "$WORK/Packages" "$WORK/repo" "$WORK/request" <<'PY'
import gzip, hashlib, os, re, sys, time
from xml.sax.saxutils import quoteattr, escape
src, repo, reqfile = sys.argv[1:4]
ARCH = {"amd64": "x86_64", "all": "noarch", "i386": "i686"}
OPS = {">=": "GE", "<=": "LE", "<<": "LT", ">>": "GT", "=": "EQ", "<": "LT", ">": "GT"}
def evr(v):
    e = "0"
    if ":" in v:
        e, v = v.split(":", 1)
    if "-" in v:
        ver, rel = v.rsplit("-", 1)
    else:
        ver, rel = v, "0"
    return e, ver, rel
def atom(s):
    s = s.strip()
    m = re.match(r"^([^\s(]+)\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?", s)
    if not m: return None
    name = m.group(1).split(":")[0]
    if m.group(2):
        e, v, r = evr(m.group(3))
        return (name, OPS[m.group(2)], e, v, r)
    return (name, None, None, None, None)
def fmt_atom(a):
    name, op, e, v, r = a
    if not op: return name
    sym = {"GE": ">=", "LE": "<=", "LT": "<", "GT": ">", "EQ": "="}[op]
    return f"{name} {sym} {e}:{v}-{r}"
def entry(a):
    name, op, e, v, r = a
    if op:
        return f'<rpm:entry name={quoteattr(name)} flags="{op}" epoch="{e}" ver={quoteattr(v)} rel={quoteattr(r)}/>'
    return f'<rpm:entry name={quoteattr(name)}/>'
def deps(field):
    out = []
    for part in field.split(","):
        alts = [atom(x) for x in part.split("|")]
        alts = [a for a in alts if a]
        if not alts: continue
        if len(alts) == 1:
            out.append(entry(alts[0]))
        else:
            out.append(f'<rpm:entry name={quoteattr("(" + " or ".join(fmt_atom(a) for a in alts) + ")")}/>')
    return out
pkgs = []
cur = {}
key = None
with open(src, encoding="utf-8", errors="replace") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line:
            if cur: pkgs.append(cur)
            cur = {}; key = None; continue
        if line[0] in " \t":
            continue
        k, _, v = line.partition(":")
        cur[k] = v.strip()
    if cur: pkgs.append(cur)
seen = set()
body = []
request = []
n = 0
for p in pkgs:
    arch = ARCH.get(p.get("Architecture", ""))
    if not arch: continue
    e, v, r = evr(p["Version"])
    nevra = (p["Package"], e, v, r, arch)
    if nevra in seen: continue
    seen.add(nevra)
    n += 1
    cks = hashlib.sha256(repr(nevra).encode()).hexdigest()
    prov = [entry((p["Package"], "EQ", e, v, r))]
    for part in p.get("Provides", "").split(","):
        a = atom(part)
        if a: prov.append(entry(a))
    req = deps(p.get("Pre-Depends", "")) + deps(p.get("Depends", ""))
    conf = [entry(a) for a in (atom(x) for x in p.get("Conflicts", "").split(",")) if a and a[0] != p["Package"]]
    rec = deps(p.get("Recommends", ""))
    fmt = "<rpm:provides>" + "".join(prov) + "</rpm:provides>"
    if req: fmt += "<rpm:requires>" + "".join(req) + "</rpm:requires>"
    if conf: fmt += "<rpm:conflicts>" + "".join(conf) + "</rpm:conflicts>"
    if rec: fmt += "<rpm:recommends>" + "".join(rec) + "</rpm:recommends>"
    body.append(f'<package type="rpm"><name>{escape(p["Package"])}</name><arch>{arch}</arch>'
                f'<version epoch="{e}" ver={quoteattr(v)} rel={quoteattr(r)}/>'
                f'<checksum type="sha256" pkgid="YES">{cks}</checksum><summary>x</summary>'
                f'<location href="Packages/{escape(p["Package"])}.rpm"/><size package="1" installed="1" archive="1"/>'
                f'<format>{fmt}</format></package>\n')
    if p.get("Priority") in ("required", "important", "standard") and arch in ("x86_64", "noarch"):
        request.append(p["Package"])
xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
       f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{n}">\n' + "".join(body) + "</metadata>\n").encode()
fl = ('<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="0">\n</filelists>\n').encode()
recs = []
for kind, data in (("primary", xml), ("filelists", fl)):
    gz = gzip.compress(data, 6)
    c = hashlib.sha256(gz).hexdigest()
    name = f"repodata/{c}-{kind}.xml.gz"
    with open(os.path.join(repo, name), "wb") as f: f.write(gz)
    recs.append(f'<data type="{kind}"><checksum type="sha256">{c}</checksum><open-checksum type="sha256">{hashlib.sha256(data).hexdigest()}</open-checksum>'
                f'<location href="{name}"/><timestamp>{int(time.time())}</timestamp><size>{len(gz)}</size><open-size>{len(data)}</open-size></data>')
with open(os.path.join(repo, "repodata/repomd.xml"), "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">'
            f'<revision>{int(time.time())}</revision>' + "".join(recs) + "</repomd>\n")
with open(reqfile, "w") as f: f.write("\n".join(sorted(set(request))) + "\n")
print(f"converted {n} packages; request has {len(set(request))} packages", file=sys.stderr)
PY

mkdir -p "$WORK/repos.d"
printf '[debian]\nname=debian\nbaseurl=file://%s/repo\ngpgcheck=0\n' "$WORK" > "$WORK/repos.d/debian.repo"
mapfile -t REQ < "$WORK/request"

now() { date +%s.%N; }
run_rost() { # $1 = cache dir, rest = specs
    local c=$1; shift
    "$ROST" pkg resolve --repofile "$WORK/repos.d/debian.repo" --releasever 12 --basearch x86_64 \
        --no-recommends --cachedir "$c" "$@" || echo "rost failed (exit $?)" >&2
}
run_dnf() { # $1 = installroot (its cache/ is dnf's cachedir), $2 = extra option or "", rest = specs
    local root=$1 opt=$2; shift 2
    mkdir -p "$root"
    dnf --installroot="$root" --setopt=reposdir="$WORK/repos.d" --setopt=cachedir="$root/cache" \
        --releasever=12 --disableplugin='*' --nogpgcheck --setopt=install_weak_deps=False \
        ${opt:+"$opt"} install --assumeno "$@" 2>&1 || true
}
dnf_set() { # parse dnf's transaction table into sorted NEVRAs
    awk '/^Installing/{t=1;next} /^Transaction Summary/{t=0} t && /^ / && NF>=5 {print $1"-"$3"."$2}' | sort
}
T=() # start/end pairs, in the order the report reads them
timed() { local a b; a=$(now); "$@"; b=$(now); T+=("$a" "$b"); }

RUNS=${RUNS:-3} # each row reports the median of this many runs (the machine may be loaded)
for i in $(seq "$RUNS"); do
    # cold: fresh cache directories
    timed run_rost "$WORK/$i/rost-load" "${REQ[0]}" > /dev/null
    timed run_dnf "$WORK/$i/dnf-load" "" "${REQ[0]}" > /dev/null
    timed run_rost "$WORK/$i/rost-big" "${REQ[@]}" > "$WORK/$i.rost-cold.txt"
    timed run_dnf "$WORK/$i/dnf-big" "" "${REQ[@]}" > "$WORK/$i.dnf-cold.out"
    # warm: the same cache directories again
    timed run_rost "$WORK/$i/rost-load" "${REQ[0]}" > /dev/null
    timed run_dnf "$WORK/$i/dnf-load" --cacheonly "${REQ[0]}" > /dev/null
    timed run_rost "$WORK/$i/rost-big" "${REQ[@]}" > "$WORK/$i.rost-warm.txt"
    timed run_dnf "$WORK/$i/dnf-big" --cacheonly "${REQ[@]}" > "$WORK/$i.dnf-warm.out"
    dnf_set < "$WORK/$i.dnf-cold.out" > "$WORK/$i.dnf-cold.txt"
    dnf_set < "$WORK/$i.dnf-warm.out" > "$WORK/$i.dnf-warm.txt"
    rm -rf "${WORK:?}/$i"
done

python3 - "$WORK" "${#REQ[@]}" "$RUNS" "${T[@]}" <<'PY'
import statistics, sys
work, nreq, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = [float(x) for x in sys.argv[4:]]
d = [t[i + 1] - t[i] for i in range(0, len(t), 2)]
per_run = [d[8 * r:8 * r + 8] for r in range(runs)]
med = [statistics.median(run[k] for run in per_run) for k in range(8)]
names = ("rost-cold", "dnf-cold", "rost-warm", "dnf-warm")
sets = {(r, n): set(open(f"{work}/{r}.{n}.txt").read().split())
        for r in range(1, runs + 1) for n in names}
print("cold = empty cache dir: dnf parses the XML and writes .solv; rost parses the XML and writes its package cache")
print("warm = same cache dir again: dnf --cacheonly loads its .solv; rost checks the repomd checksum and loads its package cache")
print(f"times: median of {runs} runs (each: cold rost, cold dnf, then warm rost, warm dnf on the same cache dirs)")
rows = [("cold", "load metadata (1-package request)", 0, 1),
        ("cold", f"large request ({nreq} specs)", 2, 3),
        ("warm", "load metadata (1-package request)", 4, 5),
        ("warm", f"large request ({nreq} specs)", 6, 7)]
for cond, what, a, b in rows:
    r, n = med[a], med[b]
    runs_r = " ".join(f"{run[a]:.2f}" for run in per_run)
    runs_n = " ".join(f"{run[b]:.2f}" for run in per_run)
    print(f"{cond}  {what:<34} rost {r:5.2f}s  dnf {n:5.2f}s  ratio {r / n:.2f}   (runs: rost {runs_r}; dnf {runs_n})")
for cond in ("cold", "warm"):
    rost, dnf = sets[(1, f"rost-{cond}")], sets[(1, f"dnf-{cond}")]
    print(f"resolved ({cond}): rost {len(rost)} packages, dnf {len(dnf)} packages, "
          f"only-rost {len(rost - dnf)}, only-dnf {len(dnf - rost)}, same={rost == dnf}")
    for x in sorted(rost - dnf)[:10]: print("  only rost:", x)
    for x in sorted(dnf - rost)[:10]: print("  only dnf: ", x)
for tool in ("rost", "dnf"):
    first = sets[(1, f"{tool}-cold")]
    same = all(sets[(r, f"{tool}-{c}")] == first for r in range(1, runs + 1) for c in ("cold", "warm"))
    print(f"{tool}: same set in every run, cold and warm: {same}")
PY
