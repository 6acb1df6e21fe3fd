package card

import (
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
)

func TestParseCodes(t *testing.T) {
	c, err := ParseCodes("")
	if err != nil || c.Code(Normal) != "1" || c.Code(FormalLoss) != "2" || c.Code(TemporaryLoss) != "4" || c.Code(Cancelled) != "5" {
		t.Fatalf("default: %v %v", c, err)
	}
	c, err = ParseCodes(`{"temporary_loss":"3","cancelled":"9"}`)
	if err != nil || c.Code(TemporaryLoss) != "3" || c.Code(Cancelled) != "9" || c.Code(Normal) != "1" {
		t.Fatalf("merged: %v %v", c, err)
	}
	if s, ok := c.Status("3"); !ok || s != TemporaryLoss {
		t.Errorf("reverse lookup: %v %v", s, ok)
	}
	for _, bad := range []string{`[1]`, `{"lost":"3"}`, `{"normal":""}`, `{"normal":"1 2"}`, `{"normal":"2"}`, `{`} {
		if _, err := ParseCodes(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(envconf.New(nil))
	if err != nil || c.TemporaryLossDays != 7 || c.BlacklistRetention != 30*24*time.Hour || c.Bank != "simulated" || c.LocalIssuing {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	_, err = LoadConfig(envconf.New([]string{"temporary_loss_days=0", "card_status_codes={", "bank_adapter=icbc"}))
	for _, name := range []string{"temporary_loss_days", "card_status_codes", "bank_adapter"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("want an error naming %s, got %v", name, err)
		}
	}
}

func TestLossExpiry_ChinaCalendarDays(t *testing.T) {
	cst := events.ChinaTime
	cases := []struct {
		at   time.Time
		days int
		want time.Time
	}{
		{time.Date(2024, 3, 1, 15, 0, 0, 0, cst), 7, time.Date(2024, 3, 9, 0, 0, 0, 0, cst)},
		{time.Date(2024, 3, 1, 0, 0, 0, 0, cst), 7, time.Date(2024, 3, 9, 0, 0, 0, 0, cst)},
		// 23:30 UTC on Feb 29 is already Mar 1 in China.
		{time.Date(2024, 2, 29, 23, 30, 0, 0, time.UTC), 1, time.Date(2024, 3, 3, 0, 0, 0, 0, cst)},
		// 15:59 UTC is 23:59 China time, still the same day.
		{time.Date(2024, 12, 31, 15, 59, 0, 0, time.UTC), 1, time.Date(2025, 1, 2, 0, 0, 0, 0, cst)},
	}
	for _, c := range cases {
		if got := LossExpiry(c.at, c.days); !got.Equal(c.want) {
			t.Errorf("%s +%d: want %s, got %s", c.at, c.days, c.want, got.In(cst))
		}
	}
}

func TestCardRefs(t *testing.T) {
	for _, ok := range []string{"B00000019", "b00000019", " Z12345678 ", "card-6f1c1f56-1d2e-4c43-9a53-2b3a0f1f7e11"} {
		if _, err := parseRef(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "B0000001", "B000000190", "1B0000001", "card-", "card-x", "B0000001X", "110105194912310021"} {
		if _, err := parseRef(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
