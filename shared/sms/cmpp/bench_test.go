package cmpp_test

import (
	"context"
	"testing"

	"github.com/sscard/platform/shared/sms"
)

// BenchmarkSubmit is the client's cost per submit to the simulator (window 16).
func BenchmarkSubmit(b *testing.B) {
	s := start(b)
	s.Reports(false)
	c := client(s, 0x30, secret, nil)
	defer c.Close()
	segs, _ := sms.Split("有3张社保卡照片审核超期，请尽快审核。", 0)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Submit(context.Background(), "13800138000", segs, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
