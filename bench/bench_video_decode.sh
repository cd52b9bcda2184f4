#!/usr/bin/env bash
# bench_video_decode.sh: the video reader's speed target, 64 frames sampled from a 10-minute 1080p
# H.264 file in under 10 s on a 2-core machine; timed with the exact rule and with --keyframes.
#
#   bench/bench_video_decode.sh [BUILD_DIR] [bench_video_decode options, e.g. --frames 32 --repeat 5]
#
# BUILD_DIR (default build) must hold bin/bench_video_decode (cmake --build BUILD_DIR --target
# bench_video_decode). The input is made once with the ffmpeg CLI and kept in BUILD_DIR/bench/:
# testsrc2 at 1920x1080, 25 fps, 600 s, libx264 -preset ultrafast (CRF 23, no B-frames), a keyframe
# every 250 frames (10 s), yuv420p, MP4; about 1 GB, a few minutes to make on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/bin/bench_video_decode
[ -x "$bin" ] || { echo "bench_video_decode.sh: $bin missing: cmake --build $build --target bench_video_decode" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "bench_video_decode.sh: the ffmpeg CLI is needed to make the input" >&2; exit 1; }

video=$build/bench/h264_1080p_600s.mp4
if [ ! -s "$video" ]; then
  mkdir -p "$build/bench"
  echo "making $video (once)..."
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1920x1080:rate=25:duration=600 \
    -c:v libx264 -preset ultrafast -g 250 -pix_fmt yuv420p "$video.part.mp4"
  mv "$video.part.mp4" "$video"
fi

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
for mode in "" --keyframes; do   # the exact rule, then an indexed keyframe per interval
  echo "command: $bin $video --frames 64 --repeat 3 $mode $*"
  "$bin" "$video" --frames 64 --repeat 3 $mode "$@"
done
