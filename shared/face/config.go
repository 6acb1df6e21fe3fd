package face

// Matching holds the decision thresholds (configuration, see docs/face-match.md).
type Matching struct {
	// VerifyThreshold: 1:1 matches when the distance is at most this. dlib trained the net
	// for 0.6; on face-api's demo photos two different women measured 0.57, so the default
	// is stricter.
	VerifyThreshold float64
	// IdentifyMaxDistance: 1:N candidates farther than this are not returned.
	IdentifyMaxDistance float64
	// IdentifyTopK caps the candidates returned.
	IdentifyTopK int
}

// DefaultMatching is the configuration without overrides.
func DefaultMatching() Matching {
	return Matching{VerifyThreshold: 0.5, IdentifyMaxDistance: 0.45, IdentifyTopK: 5}
}
