// Command photo-audit-alert is the photo-audit-alert function: the binary that goes into its OpenFaaS image and
// that the local gateway starts.
package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

func main() {
	runtime.Main("photo-audit-alert", platform.Needs{Postgres: true, Redis: true}, New)
}
