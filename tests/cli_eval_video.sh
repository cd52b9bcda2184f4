#!/usr/bin/env bash
# cli_eval_video.sh: `unisparse eval --tasks video_needle` end to end on the tiny random-weight Gemma 3
# VLM fixture and a video made here by ffmpeg. Random weights answer nonsense, so this checks the
# plumbing, not accuracy: every sample runs through every method with its needle frame, results.json
# holds the video samples and their fidelity (dense against itself: agreement 1, KL 0; the sparse
# methods: a finite KL >= 0, density in (0, 1]), and bad usage is refused with a message (no --video,
# a text-only checkpoint, a prompt over the context). Exits 77 (CTest: skipped) without the ffmpeg tool
# or in a build without video support.
# Usage: cli_eval_video.sh path/to/unisparse assets-dir
set -euo pipefail
bin=$1 assets=$2
command -v ffmpeg >/dev/null || { echo "cli_eval_video: skipped: no ffmpeg tool to make the test video"; exit 77; }
vqa_help=$("$bin" vqa --help 2>&1 || true) # a build without FFmpeg says so and exits 1
if grep -q "no video support" <<<"$vqa_help"; then echo "cli_eval_video: skipped: built without FFmpeg"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" eval --help | grep -q -- '--video' || fail "--help lists no --video"
"$bin" eval --help | grep -q -- 'video_needle' || fail "--help lists no video_needle"

# The tiny VLM as a checkpoint directory. Its config's 128 positions hold 2 frames with the question;
# the copy "vlm" raises that to 1024 (the weights do not depend on it) so that 4 frames fit, and
# "vlm128" keeps it to test the context check.
mkdir "$tmp/vlm" "$tmp/vlm128" "$tmp/text"
for d in vlm vlm128; do
  cp "$assets/gemma3-tiny-vlm/config.json" "$assets/gemma3-tiny-vlm/model.safetensors" "$tmp/$d/"
  cp "$assets/tokenizer/tiny.model" "$tmp/$d/tokenizer.model"
done
python3 - "$tmp/vlm/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["text_config"]["max_position_embeddings"] = 1024
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
# the text-only tiny Gemma 3
cp "$assets/gemma3-tiny/config.json" "$assets/gemma3-tiny/model.safetensors" "$tmp/text/"
cp "$assets/tokenizer/tiny.model" "$tmp/text/tokenizer.model"
ffmpeg -v error -f lavfi -i testsrc2=size=96x64:rate=10:duration=4 -c:v libx264 -pix_fmt yuv420p "$tmp/clip.mp4"

"$bin" eval --model "$tmp/vlm" --tasks video_needle --methods dense,unisparse,xattention --samples 2 --frames 4 \
  --video "$tmp/clip.mp4" --seed 11 --out "$tmp/run" --json >"$tmp/stdout.json"
python3 - "$tmp/run" "$tmp/stdout.json" "$tmp/clip.mp4" <<'PY'
import json, math, sys
out, stdout, video = sys.argv[1:4]
r = json.load(open(f"{out}/results.json"))
assert r["complete"] is True and r["seed"] == 11, r
assert r["video"] == video and r["frames"] == 4, (r.get("video"), r.get("frames"))
samples = r["samples"]
assert [s["task"] for s in samples] == ["video_needle"] * 2, samples
assert [s["depth"] for s in samples] == [0, 1], [s["depth"] for s in samples]  # needle first, then last
for s in samples:
    # 4 frames x (16 soft tokens + boi + eoi) plus timestamps, question and answer prefix; the length of
    # a video sample is its realised prompt
    assert 4 * 18 < s["prompt_tokens"] < 1024 and s["length"] == s["prompt_tokens"], s
    (e,) = s["expected"]
    assert e.isdigit() and 2 <= len(e) <= 3 and e[0] != "0", e
    assert [x["method"] for x in s["runs"]] == ["dense", "unisparse", "xattention"], s["runs"]
    d = s["runs"][0]
    assert d["token_agreement"] == 1 and d["kl"] == 0 and d["exact_match"] is True and d["density"] == 1, d
    for x in s["runs"]:
        assert math.isfinite(x["kl"]) and x["kl"] >= 0, x
        assert 0 < x["density"] <= 1 and 0 <= x["token_agreement"] <= 1 and x["prefill_s"] > 0, x
        assert 0 <= x["score"] <= 1 and len(x["answer_ids"]) <= 12, x
rows = r["aggregate"]
assert [(a["task"], a["method"]) for a in rows] == [("video_needle", m) for m in ("dense", "unisparse", "xattention")], rows
for a in rows:
    assert a["samples"] == 2 and a["length"] == samples[0]["prompt_tokens"], a
    if a["method"] == "dense":
        assert a["relative_accuracy"] == 1 and a["kl"] == 0 and a["token_agreement"] == 1, a
    else:
        assert a["kl"] >= 0 and 0 < a["density"] <= 1, a
assert json.load(open(stdout))["aggregate"] == json.loads(json.dumps(rows)), "--json prints the aggregate"
md = open(f"{out}/results.md").read()
assert "| video_needle |" in md and "4 frames of" in md, md
assert open(f"{out}/plot.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n", "plot.png is a PNG"
print("eval video ok:", [(a["method"], a["kl"], round(a["density"], 3)) for a in rows])
PY

expect_fail() { # expected status, text in stderr, command...
  local want=$1 text=$2; shift 2
  set +e; "$@" 2>"$tmp/err" >/dev/null; local got=$?; set -e
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want: $(cat "$tmp/err")"
  grep -qF -- "$text" "$tmp/err" || fail "$* said '$(cat "$tmp/err")', expected '$text'"
}
expect_fail 2 "needs --video FILE" "$bin" eval --model "$tmp/vlm" --out "$tmp/x" --tasks video_needle
expect_fail 2 "needs --video FILE" "$bin" eval --model "$tmp/vlm" --out "$tmp/x" --tasks vt,video_needle
expect_fail 2 "$tmp/text has no vision tower" \
  "$bin" eval --model "$tmp/text" --out "$tmp/x" --tasks video_needle --video "$tmp/clip.mp4"
expect_fail 2 "--frames in [1, 1024]" \
  "$bin" eval --model "$tmp/vlm" --out "$tmp/x" --tasks video_needle --video "$tmp/clip.mp4" --frames 0
expect_fail 2 "use fewer --frames" \
  "$bin" eval --model "$tmp/vlm128" --out "$tmp/x" --tasks video_needle --video "$tmp/clip.mp4" --frames 4
expect_fail 1 "$tmp/missing.mp4" \
  "$bin" eval --model "$tmp/vlm" --out "$tmp/x" --tasks video_needle --video "$tmp/missing.mp4" --frames 2
echo "cli_eval_video: all checks passed"
