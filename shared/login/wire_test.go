package login

import (
	"strings"
	"testing"
)

func TestAuthorityAllowed_LocalOnlyInDevelopment(t *testing.T) {
	for _, c := range []struct {
		authority   string
		development bool
		ok          bool
		names       string
	}{
		{"", false, false, "ecard_authority"},
		{"", true, false, "ecard_authority"},
		{"local", false, false, DevelopmentSetting},
		{"local", true, true, ""},
	} {
		err := authorityAllowed(c.authority, c.development)
		if (err == nil) != c.ok {
			t.Errorf("%q dev=%v: want ok=%v, got %v", c.authority, c.development, c.ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), c.names) {
			t.Errorf("%q dev=%v: the message should name %s: %v", c.authority, c.development, c.names, err)
		}
	}
}
