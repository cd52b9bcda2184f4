#!/usr/bin/env bash
# cli_vqa.sh: `unisparse vqa` end to end on the tiny random-weight Gemma 3 VLM fixture (its weights,
# the test tokenizer) and a video made here by ffmpeg: frames and timestamps, answers reusing the
# video's prefix KV cache equal to separate runs, and bad inputs (a text-only checkpoint, a corrupt
# video, more frames than the context holds). Exits 77 (CTest: skipped) without the ffmpeg tool.
# Usage: cli_vqa.sh path/to/unisparse assets-dir [path/to/270m.gguf]
set -euo pipefail
bin=$1 assets=$2 gguf=${3:-}
command -v ffmpeg >/dev/null || { echo "cli_vqa: skipped: no ffmpeg tool to make the test video"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" vqa --help | grep -q "Gemma3ForConditionalGeneration" || fail "--help names no supported checkpoint"
if "$bin" vqa --help | grep -q "no video support"; then echo "cli_vqa: skipped: built without FFmpeg"; exit 77; fi

# the tiny VLM as a checkpoint directory: config + weights of the fixture, the test tokenizer
mkdir "$tmp/vlm"
cp "$assets/gemma3-tiny-vlm/config.json" "$assets/gemma3-tiny-vlm/model.safetensors" "$tmp/vlm/"
cp "$assets/tokenizer/tiny.model" "$tmp/vlm/tokenizer.model"
ffmpeg -v error -f lavfi -i testsrc2=size=96x64:rate=10:duration=4 -c:v libx264 -pix_fmt yuv420p "$tmp/clip.mp4"

"$bin" vqa --model "$tmp/vlm" --video "$tmp/clip.mp4" --frames 2 --exact --question "What is shown?" \
  --max-tokens 6 --json >"$tmp/one.json"
printf 'What is shown?\nWhat colour is it?\n' >"$tmp/questions.txt"
"$bin" vqa --model "$tmp/vlm" --video "$tmp/clip.mp4" --frames 2 --exact --questions "$tmp/questions.txt" \
  --max-tokens 6 --json >"$tmp/two.json"
"$bin" vqa --model "$tmp/vlm" --video "$tmp/clip.mp4" --frames 2 --exact --question "What colour is it?" \
  --max-tokens 6 --json >"$tmp/second.json"
python3 - "$tmp/one.json" "$tmp/two.json" "$tmp/second.json" <<'PY'
import json, sys
one, two, second = (json.load(open(p)) for p in sys.argv[1:4])
# frames at the centres of two equal halves of the 4 s clip
assert [round(t, 2) for t in one["frames"]] == [1.0, 3.0], one["frames"]
# 2 frames x (16 soft tokens + boi + eoi) and their text
assert 2 * 18 < one["prefix_tokens"] < 100, one["prefix_tokens"]
assert len(one["answers"]) == 1 and 1 <= len(one["answers"][0]["ids"]) <= 6, one
for k in ("decode_video", "encode_images", "prefill_video"):
    assert one["timings_ms"][k] >= 0, k
assert 0 < one["attention_density"] <= 1
# questions sharing the video prefill answer exactly as separate runs do
assert two["answers"][0]["ids"] == one["answers"][0]["ids"], (two, one)
assert two["answers"][1]["ids"] == second["answers"][0]["ids"], (two, second)
print("vqa ok: answers", [a["ids"] for a in two["answers"]])
PY

# the default sampling takes the first keyframe inside each interval (x264's one keyframe: at 0 s)
"$bin" vqa --model "$tmp/vlm" --video "$tmp/clip.mp4" --frames 2 --question "?" --max-tokens 1 --json >"$tmp/kf.json"
python3 -c "import json,sys; f=json.load(open(sys.argv[1]))['frames']; assert [round(t, 2) for t in f] == [0.0, 3.0], f" \
  "$tmp/kf.json"

# generate --image: the same image path for still pictures (one PNG, shown twice)
img="$assets/media/odd-37x23.png"
"$bin" generate --model "$tmp/vlm" --image "$img,$img" --prompt "Describe the images." --chat --max-tokens 4 \
  --json >"$tmp/img.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert len(r['ids']) == 4 and r['prompt_tokens'] > 2 * 18, r" \
  "$tmp/img.json"
set +e
"$bin" generate --model "$tmp/vlm" --image "$tmp/none.png" --prompt "x" 2>"$tmp/e0"; rc0=$?
set -e
[ $rc0 -eq 1 ] && grep -q "none.png" "$tmp/e0" || fail "missing image: rc $rc0: $(cat "$tmp/e0")"

# bad inputs: named, exit 1
head -c 3000 "$tmp/clip.mp4" >"$tmp/cut.mp4"
set +e
"$bin" vqa --model "$tmp/vlm" --video "$tmp/cut.mp4" --question "?" 2>"$tmp/e1"; rc1=$?
"$bin" vqa --model "$tmp/vlm" --video "$tmp/clip.mp4" --frames 12 --question "?" 2>"$tmp/e2"; rc2=$?
"$bin" vqa --model "$tmp/vlm" --video "$tmp/missing.mp4" --question "?" 2>"$tmp/e3"; rc3=$?
set -e
[ $rc1 -eq 1 ] && grep -q "cut.mp4" "$tmp/e1" || fail "truncated video: rc $rc1: $(cat "$tmp/e1")"
[ $rc2 -eq 1 ] && grep -q "context" "$tmp/e2" || fail "too many frames: rc $rc2: $(cat "$tmp/e2")"
[ $rc3 -eq 1 ] && grep -q "missing.mp4" "$tmp/e3" || fail "missing video: rc $rc3: $(cat "$tmp/e3")"
if [ -n "$gguf" ] && [ -f "$gguf" ]; then
  set +e
  "$bin" vqa --model "$gguf" --video "$tmp/clip.mp4" --question "?" 2>"$tmp/e4"; rc4=$?
  set -e
  [ $rc4 -eq 1 ] && grep -q "no vision tower" "$tmp/e4" || fail "text-only checkpoint: rc $rc4: $(cat "$tmp/e4")"
fi
echo "cli_vqa: all ok"
