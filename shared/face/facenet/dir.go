package facenet

import (
	"os"
	"path/filepath"

	"github.com/sscard/platform/shared/envconf"
)

// PackageVersion is the @vladmandic/face-api release whose weights this port was checked
// against (tests/face/reference). infra/scripts/services.sh install fetches it.
const PackageVersion = "1.7.15"

// PackageDir is where the install step unpacks the face-api npm package: $SSCARD_FACE_API
// if set, else face-api-<version>/package under the project cache ($SSCARD_CACHE, else
// $XDG_CACHE_HOME/sscard or ~/.cache/sscard). It returns "" when no such directory exists.
// The model files are under model/, the demo photos under demo/.
func PackageDir() string {
	d := os.Getenv("SSCARD_FACE_API")
	if d == "" {
		cache := envconf.CacheDir()
		if cache == "" {
			return ""
		}
		d = filepath.Join(cache, "face-api-"+PackageVersion, "package")
	}
	if _, err := os.Stat(filepath.Join(d, "model", Manifest)); err != nil {
		return ""
	}
	return d
}
