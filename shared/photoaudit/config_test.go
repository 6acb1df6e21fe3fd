package photoaudit

import (
	"strings"
	"testing"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/workday"
)

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(envconf.New([]string{"photo_audit_providers=kiosk=甲审核公司, outlet=B Co"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold != 3 || c.Recipient != "group:photo-audit-managers" || c.TriggerClock {
		t.Errorf("defaults: %+v", c)
	}
	for ch, want := range map[events.Channel]string{"kiosk": "甲审核公司", "outlet": "B Co", "h5": "third-party-audit"} {
		if got := c.ProviderFor(ch); got != want {
			t.Errorf("%s: %q, want %q", ch, got, want)
		}
	}
	if got := strings.Join(c.Providers(), "|"); got != "B Co|third-party-audit|甲审核公司" {
		t.Errorf("providers: %s", got)
	}
	_, err = LoadConfig(envconf.New([]string{"photo_audit_providers=phone=X,kiosk", "photo_audit_threshold_days=0",
		"photo_audit_recipient=13800138000", "photo_audit_provider=/etc"}))
	for _, key := range []string{"photo_audit_providers", "photo_audit_threshold_days", "photo_audit_recipient", "photo_audit_provider"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad %s not reported: %v", key, err)
		}
	}
}

// The alert's message id is one per China-time day: the contract with sms-alert.
func TestAlertEvent(t *testing.T) {
	c, _ := LoadConfig(envconf.New(nil))
	s := &Service{Config: c}
	d := mustDate(t, "2026-12-04")
	ev, err := s.alert(d, 7)
	if err != nil {
		t.Fatal(err)
	}
	data, err := events.Decode[events.SMSRequestedData](ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID() != "photo-audit-overdue-2026-12-04" || data.MessageID != ev.ID() || data.Template != "photo_audit_overdue" ||
		data.Params["count"] != "7" || data.RecipientRef != "group:photo-audit-managers" || data.Purpose != events.PurposeAlert ||
		ev.Source() != "/functions/photo-audit-alert" {
		t.Errorf("alert: id %s source %s data %+v", ev.ID(), ev.Source(), data)
	}
}

func mustDate(t *testing.T, s string) workday.Date {
	t.Helper()
	d, err := workday.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
