//go:build !amd64

package vindex

var useAsm = false

func sqDist16(a, b *float32, n int) float32 { panic("unreachable") }
