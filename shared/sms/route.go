package sms

import (
	"errors"
	"slices"
	"strings"
)

// Channels: one gateway account each. Numbers go to their carrier's gateway by prefix;
// numbers registered outside the province go to the out-of-province channel when one is
// configured; numbers of no known carrier (广电 192, satellites) and numbers a carrier
// refused as not its own (ported: 携号转网) go to the fallback.
const (
	ChannelMobile   = "mobile"  // China Mobile, CMPP
	ChannelTelecom  = "telecom" // China Telecom, SMGP
	ChannelUnicom   = "unicom"  // China Unicom, SGIP
	ChannelOutProv  = "outprov"
	ChannelFallback = "fallback"
)

// Channels lists every channel name.
var Channels = []string{ChannelMobile, ChannelTelecom, ChannelUnicom, ChannelOutProv, ChannelFallback}

// DefaultPrefixes are the number segments of each carrier, MVNOs included (reference
// domain.md §4.6, 2020-05). Longer prefixes win, so 1349 (Telecom) beats 134 (Mobile).
var DefaultPrefixes = map[string][]string{
	ChannelMobile: {"1340", "1341", "1342", "1343", "1344", "1345", "1346", "1347", "1348", "135", "136", "137", "138",
		"139", "147", "150", "151", "152", "157", "158", "159", "165", "1703", "1705", "1706", "172", "178", "182", "183",
		"184", "187", "188", "195", "197", "198"},
	ChannelUnicom: {"130", "131", "132", "145", "155", "156", "166", "167", "1704", "1707", "1708", "1709", "171",
		"175", "176", "185", "186", "196"},
	ChannelTelecom: {"133", "1349", "149", "153", "162", "1700", "1701", "1702", "173", "17400", "17401", "17402",
		"17403", "17404", "17405", "177", "180", "181", "189", "190", "191", "193", "199"},
}

// Routes decides the channel of a number.
type Routes struct {
	prefixes map[string]string // prefix → channel
	// home holds the number segments (号段, usually 7 digits) registered in the province;
	// empty means every number is treated as local.
	home []string
}

// NewRoutes builds routes from carrier prefixes (nil: DefaultPrefixes) and home segments.
func NewRoutes(prefixes map[string][]string, home []string) (*Routes, error) {
	if prefixes == nil {
		prefixes = DefaultPrefixes
	}
	r := &Routes{prefixes: map[string]string{}, home: home}
	for ch, ps := range prefixes {
		if !slices.Contains([]string{ChannelMobile, ChannelTelecom, ChannelUnicom}, ch) {
			return nil, errors.New("sms: carrier prefixes for unknown channel " + ch)
		}
		for _, p := range ps {
			if !digits(p) || len(p) < 3 {
				return nil, errors.New("sms: bad number prefix " + p)
			}
			if prev, dup := r.prefixes[p]; dup && prev != ch {
				return nil, errors.New("sms: prefix " + p + " given to two carriers")
			}
			r.prefixes[p] = ch
		}
	}
	for _, h := range home {
		if !digits(h) {
			return nil, errors.New("sms: bad home segment " + h)
		}
	}
	return r, nil
}

// Carrier is the carrier channel a number's prefix belongs to ("" when none).
func (r *Routes) Carrier(phone string) string {
	for n := min(len(phone), 7); n >= 3; n-- {
		if ch, ok := r.prefixes[phone[:n]]; ok {
			return ch
		}
	}
	return ""
}

// Channel is where a (normalised) mainland mobile number is sent first.
func (r *Routes) Channel(phone string) string {
	ch := r.Carrier(phone)
	if ch == "" {
		return ChannelFallback
	}
	if len(r.home) > 0 && !slices.ContainsFunc(r.home, func(h string) bool { return strings.HasPrefix(phone, h) }) {
		return ChannelOutProv
	}
	return ch
}

// NormalisePhone returns the 11-digit mainland mobile number, without separators or
// +86/0086/86, and false when s is not one.
func NormalisePhone(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
			return -1
		}
		return r
	}, s)
	for _, p := range []string{"+86", "0086", "86"} {
		if strings.HasPrefix(s, p) && len(s) == len(p)+11 {
			s = s[len(p):]
			break
		}
	}
	if len(s) != 11 || s[0] != '1' || !digits(s) {
		return "", false
	}
	return s, true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
