#!/bin/sh
# Regenerates the JPEG test fixtures in this directory (see README). Needs Go and cjpeg
# (Debian: libjpeg-turbo-progs); the tests themselves need neither.
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ppm.go" <<'GO'
// A portrait-like test image as PPM, w×h from the arguments: a shaded background, an
// oval "face", a striped collar (high frequencies) and some deterministic noise.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

func main() {
	w, _ := strconv.Atoi(os.Args[1])
	h, _ := strconv.Atoi(os.Args[2])
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "P6\n%d %d\n255\n", w, h)
	seed := uint32(1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			n := int(seed>>27) - 16
			r, g, b := 200-y*60/h, 210-y*30/h, 230
			if dx, dy := (x-w/2)*45/w, (y-h*2/5)*59/h; dx*dx*4+dy*dy*2 < 700 {
				r, g, b = 225-dy, 180-dx, 150
			}
			if y > h*4/5 && (x*45/w/3)%2 == 0 {
				r, g, b = 30, 40, 120
			}
			fmt.Fprintf(out, "%c%c%c", clamp(r+n), clamp(g+n), clamp(b+n))
		}
	}
	out.Flush()
}

func clamp(v int) byte { return byte(max(0, min(255, v))) }
GO
# 45×59: odd on purpose, no MCU size divides it. 358×441: the card photo's size.
go run "$tmp/ppm.go" 45 59 >"$tmp/in.ppm"
go run "$tmp/ppm.go" 358 441 >"$tmp/photo.ppm"
printf '0;\n1;\n2;\n' >"$tmp/separate.txt"
printf '0;\n1,2;\n' >"$tmp/chroma.txt"
j() { out=$1; shift; cjpeg "$@" -outfile "$out" "$tmp/in.ppm"; }
j rst-rows.jpg -restart 1
j rst-2b.jpg -restart 2B
j rst-1b-422.jpg -sample 2x1 -restart 1B
j rst-1b-444.jpg -sample 1x1 -restart 1B
j s444.jpg -sample 1x1
j s422.jpg -sample 2x1
j s440.jpg -sample 1x2
j s411.jpg -sample 4x1
j s410.jpg -sample 4x2 -restart 2B
j gray.jpg -grayscale
j gray-rst.jpg -grayscale -restart 5B
j optimize.jpg -optimize -restart 2
j rgb.jpg -rgb
j q100-444.jpg -quality 100 -sample 1x1
j q5.jpg -quality 5
j separate.jpg -scans "$tmp/separate.txt"
j separate-444-rst.jpg -sample 1x1 -scans "$tmp/separate.txt" -restart 2B
j separate-rst.jpg -scans "$tmp/separate.txt" -restart 2B
j chroma-scan.jpg -scans "$tmp/chroma.txt" -restart 3B
j s42-21-separate.jpg -sample 4x2,2x1,2x1 -scans "$tmp/separate.txt"
j progressive.jpg -progressive
j arithmetic.jpg -arithmetic
# Card-photo size, for CheckPhoto's fallback to image/jpeg (small: low quality, no noise
# worth keeping).
cjpeg -progressive -quality 20 -outfile photo-progressive.jpg "$tmp/photo.ppm"
cjpeg -arithmetic -quality 20 -outfile photo-arithmetic.jpg "$tmp/photo.ppm"
