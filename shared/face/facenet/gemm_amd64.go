package facenet

import "golang.org/x/sys/cpu"

// useAsm selects the AVX2/FMA kernel (gemm_amd64.s). Tests may turn it off to compare.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kern4x16 sets out[4][16] = a[4 rows, stride lda][k] × bp[k][16].
//
//go:noescape
func kern4x16(k int, a *float32, lda int, bp *float32, out *float32)
