// Command reconcile is the reconcile function: the binary that goes into its OpenFaaS image and
// that the local gateway starts.
package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

func main() {
	runtime.Main("reconcile", platform.Needs{Postgres: true, Redis: true, ObjectStore: true}, New)
}
