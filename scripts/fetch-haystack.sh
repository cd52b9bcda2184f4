#!/usr/bin/env bash
# fetch-haystack.sh: real prose for the haystack of `unisparse eval --haystack data/haystack.txt`.
#
# The text is the English edition of "The Debian Administrator's Handbook" (Debian package
# debian-handbook, in Debian 12 as 11.20220922; CC BY-SA 3.0 / GPL-2+), a book written as prose.
# `apt-get download` fetches the package (apt checks it against the signed archive indexes), then
# the body paragraphs (<div class="para">) of its en-US HTML chapters are taken in the order of the
# book's table of contents; code listings, tables, navigation and paragraphs under 120 characters are
# left out. About 145,000 words (~200,000 Gemma tokens), far more than a 32K or 128K context needs.
#
# Idempotent (an existing data/haystack.txt is kept; --force remakes it), non-interactive, no root
# needed when the apt lists are present (run `apt-get update` once otherwise).
# Usage: scripts/fetch-haystack.sh [--force]       Needs apt-get, dpkg-deb, tar and python3.
set -euo pipefail

PACKAGE=debian-handbook
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/data/haystack.txt"
die() { echo "fetch-haystack: error: $*" >&2; exit 1; }

if [ -s "$dest" ] && [ "${1:-}" != "--force" ]; then
    echo "fetch-haystack: $dest present ($(wc -w <"$dest") words); --force remakes it"
    exit 0
fi
for tool in apt-get dpkg-deb tar python3; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
apt-cache show "$PACKAGE" >/dev/null 2>&1 || die "apt knows no package $PACKAGE: run 'apt-get update' first"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sandbox=()  # as root, apt would drop to its _apt user, which cannot write to our private temp dir
[ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
(cd "$tmp" && apt-get download -q "${sandbox[@]}" "$PACKAGE" >/dev/null) || die "apt-get download $PACKAGE failed"
deb=$(ls "$tmp"/${PACKAGE}_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "apt-get download left no .deb"
html=usr/share/doc/debian-handbook/html/en-US
mkdir -p "$tmp/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards "./$html/*.html" \
    || die "$deb holds no $html/*.html"

mkdir -p "$root/data"
python3 - "$tmp/x/$html" "$dest.partial" <<'PY'
import html.parser, os, re, sys

src, out = sys.argv[1], sys.argv[2]
index = open(os.path.join(src, "index.html"), encoding="utf-8").read()
order = []  # chapters in the table of contents' order
for href in re.findall(r'href="([^"#:/]+\.html)', index):
    if href not in order and os.path.exists(os.path.join(src, href)):
        order.append(href)


class Paragraphs(html.parser.HTMLParser):
    """Text of the outermost <div class="para"> elements, without code, tables or scripts."""

    SKIP = ("pre", "script", "style", "table")

    def __init__(self):
        super().__init__()
        self.divs, self.depth, self.skip, self.buf, self.paras = [], 0, 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if tag == "div":
            para = ("class", "para") in attrs
            self.divs.append(para)
            if para:
                self.buf = [] if self.depth == 0 else self.buf
                self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if tag == "div" and self.divs and self.divs.pop():
            self.depth -= 1
            if self.depth == 0:
                text = " ".join("".join(self.buf).split())
                if len(text) >= 120 and text.count(" ") >= 15:
                    self.paras.append(text)

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.buf.append(data)


paras = []
for name in order:
    p = Paragraphs()
    p.feed(open(os.path.join(src, name), encoding="utf-8").read())
    paras += p.paras
text = "\n\n".join(paras) + "\n"
if len(text.split()) < 50000:
    sys.exit(f"fetch-haystack: only {len(text.split())} words extracted: the package's layout changed?")
with open(out, "w", encoding="utf-8") as f:
    f.write(text)
PY
mv -f "$dest.partial" "$dest"
echo "fetch-haystack: wrote $dest ($(wc -w <"$dest") words from $(basename "$deb"))"
