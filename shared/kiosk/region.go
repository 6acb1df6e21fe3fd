package kiosk

import "strings"

// A region is a 6-digit administrative division code (行政区划代码, GB/T 2260): two digits
// of province, two of prefecture, two of county. A code ending in "00" names the whole
// level above, so a region covers its sub-regions by prefix: 440000 (广东) ⊃ 441900 (东莞)
// ⊃ 441901.

// ValidRegion reports whether code is six digits.
func ValidRegion(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < 6; i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// RegionPrefix is the prefix every code inside region shares: 440000 → "44",
// 441900 → "4419", 441901 → "441901".
func RegionPrefix(region string) string {
	p := region
	for i := 0; i < 2 && strings.HasSuffix(p, "00"); i++ {
		p = p[:len(p)-2]
	}
	return p
}

// Covers reports whether region (an administrator's) includes code (a kiosk's).
func Covers(region, code string) bool {
	return ValidRegion(region) && ValidRegion(code) && strings.HasPrefix(code, RegionPrefix(region))
}
