package reconcile

import (
	"syscall"
	"unsafe"
)

// bigAlloc returns n zeroed bytes outside the Go heap, in transparent huge pages where
// the kernel gives them (madvise mode): the join's tables are read at random, and with
// 4 KB pages nearly every lookup of a 10M-row day also missed the TLB. Only pointer-free
// data may live here. free must be called.
func bigAlloc(n int) (b []byte, free func()) {
	const huge = 2 << 20
	m, err := syscall.Mmap(-1, 0, n+huge, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n), func() {}
	}
	off := 0
	if r := uintptr(unsafe.Pointer(&m[0])) % huge; r != 0 {
		off = int(huge - r)
	}
	_ = syscall.Madvise(m[off:off+n], 14) // MADV_HUGEPAGE
	return m[off : off+n : off+n], func() { _ = syscall.Munmap(m) }
}
