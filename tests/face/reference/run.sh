#!/usr/bin/env bash
# Regenerates shared/face/facenet/testdata (150x150 chips + face-api's descriptors of them)
# with face-api itself in Node (tfjs wasm backend). npm packages go into a scratch
# directory under the cache, installed without scripts; nothing is committed but the
# output. Needs the face-api package from `infra/scripts/services.sh face-models`.
#
#   tests/face/reference/run.sh                      regenerate the fixtures
#   tests/face/reference/run.sh --bench IMAGE [RUNS] time face-api on IMAGE (make bench-face)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CACHE=${SSCARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sscard}
PKG=${SSCARD_FACE_API:-$CACHE/face-api-1.7.15/package}
[ -s "$PKG/model/face_recognition_model.bin" ] || "$ROOT/infra/scripts/services.sh" face-models
SCRATCH=$CACHE/face-reference-node
if [ ! -f "$SCRATCH/.installed-1" ]; then
	mkdir -p "$SCRATCH"
	(cd "$SCRATCH" && { [ -f package.json ] || npm init -y >/dev/null; } &&
		npm install --silent --ignore-scripts --no-audit --no-fund \
			@tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 jpeg-js@0.4.4 pngjs@7.0.0 >/dev/null)
	touch "$SCRATCH/.installed-1"
fi
# face-api's node-wasm bundle requires @tensorflow/tfjs: resolve it from the scratch dir.
export NODE_PATH=$SCRATCH/node_modules
if [ "${1:-}" = --bench ]; then
	exec node "$ROOT/tests/face/reference/descriptors.js" --bench "$PKG" "$2" "${3:-5}"
fi
OUT=$ROOT/shared/face/facenet/testdata
mkdir -p "$OUT"
node "$ROOT/tests/face/reference/descriptors.js" "$PKG" "$OUT" "$PKG/demo/sample1.jpg"
