//go:build !windows && !cgo

package reader

import (
	"context"
	"errors"
)

// Built says whether this build reads cards through PC/SC: a Linux build without cgo
// cannot link libpcsclite, so it runs the rest of the daemon without a reader.
const Built = false

// Run reports the reader as faulty until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	w.set(Fault, nil, errors.New("this build has no PC/SC support (built without cgo)"))
	<-ctx.Done()
}
