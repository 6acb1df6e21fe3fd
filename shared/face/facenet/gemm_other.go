//go:build !amd64

package facenet

var useAsm = false

func kern4x16(k int, a *float32, lda int, bp *float32, out *float32) { panic("unreachable") }
