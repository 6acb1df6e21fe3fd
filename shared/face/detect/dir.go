package detect

import (
	"os"
	"path/filepath"

	"github.com/sscard/platform/shared/envconf"
)

// PigoVersion is the pigo module release whose cascades the install step copies.
const PigoVersion = "v1.4.6"

// CascadeDir is where the install step copies pigo's cascades: $SSCARD_PIGO_CASCADES if
// set, else pigo-<version>/cascade under the project cache ($SSCARD_CACHE, else
// ~/.cache/sscard). It returns "" when the cascades are not there.
func CascadeDir() string {
	d := os.Getenv("SSCARD_PIGO_CASCADES")
	if d == "" {
		cache := envconf.CacheDir()
		if cache == "" {
			return ""
		}
		d = filepath.Join(cache, "pigo-"+PigoVersion, "cascade")
	}
	if _, err := os.Stat(filepath.Join(d, "puploc")); err != nil {
		return ""
	}
	return d
}
