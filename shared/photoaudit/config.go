// Package photoaudit is the third-party photo-audit clock and its overdue alert (004
// §3(22),(23)): it records when each application's photo starts and stops waiting for
// audit (PhotoSubmitted, PhotoAudited), counts the photos waiting more than the threshold
// of working days (shared/workday, over the calendar administrators maintain), asks
// sms-alert once a day to tell the audit managers, and answers the overdue query and its
// xlsx export. No net/http: functions/photo-audit-alert maps it to routes.
package photoaudit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/workday"
)

// Producer is the outbox producer and Source the CloudEvents source of the alert.
const (
	Producer = "photo-audit-alert"
	Source   = "/functions/photo-audit-alert"
)

// The CONTRACT with sms-alert: one SMSRequested per run, addressed to a contact group;
// sms-alert expands the group to one SMS per member with the text
// 有{count}张社保卡照片审核超期，请尽快审核。 and dedupes per (messageId, recipient).
const (
	Template       = "photo_audit_overdue"
	ParamCount     = "count"
	MessagePrefix  = "photo-audit-overdue-" // + China-time date of the run
	DefaultContact = "group:photo-audit-managers"
)

// Config is photo-audit-alert's settings (stack.yml environment).
type Config struct {
	// Threshold is the working days a photo may wait (photo_audit_threshold_days, 3 by
	// 004 §3(23)).
	Threshold int
	// DefaultProvider audits photos of channels ByChannel does not name
	// (photo_audit_provider). card-apply records no audit provider, so the provider of a
	// photo is configuration applied when its clock starts.
	DefaultProvider string
	// ByChannel: channel → provider (photo_audit_providers, "kiosk=ProviderA,outlet=ProviderB").
	ByChannel map[string]string
	// Recipient of the alert (photo_audit_recipient): a contact group sms-alert expands.
	Recipient string
	// TriggerClock (photo_audit_trigger_clock, development and tests only): a scheduled
	// run takes its instant from the PingSource event's time instead of the clock, so a
	// test can run "next Wednesday" without waiting for it.
	TriggerClock bool
	// ExportLimit bounds the rows of one export (photo_audit_export_limit).
	ExportLimit int
}

var providerName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._()（）-]{0,63}$`)

// LoadConfig reads the settings; every bad one is reported.
func LoadConfig(env *envconf.Env) (Config, error) {
	c := Config{
		Threshold:       env.Int("photo_audit_threshold_days", 3, 1, workday.MaxThreshold),
		DefaultProvider: env.String("photo_audit_provider", "third-party-audit"),
		ByChannel:       map[string]string{},
		Recipient:       env.String("photo_audit_recipient", DefaultContact),
		TriggerClock:    env.Bool("photo_audit_trigger_clock", false),
		ExportLimit:     env.Int("photo_audit_export_limit", 50000, 1, 1000000),
	}
	if !providerName.MatchString(c.DefaultProvider) {
		env.Fail("photo_audit_provider", "want a provider name of letters, digits, spaces and ._()- (at most 64)")
	}
	if v := strings.TrimSpace(env.String("photo_audit_providers", "")); v != "" {
		for _, pair := range strings.Split(v, ",") {
			ch, p, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || !events.Channel(ch).Valid() || !providerName.MatchString(p) {
				env.Fail("photo_audit_providers", fmt.Sprintf("%q: want channel=provider with a channel of %v", pair, events.Channel("").Values()))
				continue
			}
			c.ByChannel[ch] = p
		}
	}
	if !strings.HasPrefix(c.Recipient, "group:") || len(c.Recipient) == len("group:") {
		env.Fail("photo_audit_recipient", "want a contact group reference group:<name>")
	}
	return c, env.Err()
}

// ProviderFor is the provider auditing photos taken on channel.
func (c Config) ProviderFor(channel events.Channel) string {
	if p, ok := c.ByChannel[string(channel)]; ok {
		return p
	}
	return c.DefaultProvider
}

// Providers lists every configured provider, sorted.
func (c Config) Providers() []string {
	set := map[string]bool{c.DefaultProvider: true}
	for _, p := range c.ByChannel {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
