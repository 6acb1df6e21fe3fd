package envconf

import (
	"os"
	"path/filepath"
)

// CacheDir is the project's cache of fetched tools and models, the same directory
// infra/scripts/services.sh fills: $SSCARD_CACHE if set, else sscard under the user's
// cache directory ($XDG_CACHE_HOME or ~/.cache). "" when neither can be found.
func CacheDir() string {
	if d := os.Getenv("SSCARD_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "sscard")
}
