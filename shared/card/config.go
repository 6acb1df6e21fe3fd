package card

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
)

// Codes maps each status to the province's status code (AAZ502). Codes differ by province
// and there is no national list, so they are configuration.
type Codes map[Status]string

// DefaultCodes: '1' normal, '2' formal loss, '4' temporary loss as observed in a
// province's AAZ502 table (../shared/ref/domain.md §3.5), and '5' cancelled (注销) as in
// the kiosk SDK's enum, for want of a published provincial value.
func DefaultCodes() Codes {
	return Codes{Normal: "1", FormalLoss: "2", TemporaryLoss: "4", Cancelled: "5"}
}

var codeShape = regexp.MustCompile(`^[A-Za-z0-9]{1,8}$`)

// ParseCodes reads a JSON object {"<status>": "<code>", …}. Statuses not named keep their
// default; codes are 1–8 letters or digits and must stay distinct, so a code maps back to
// one status.
func ParseCodes(text string) (Codes, error) {
	c := DefaultCodes()
	if strings.TrimSpace(text) == "" {
		return c, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf(`want a JSON object such as {"normal":"1","temporary_loss":"4"}: %v`, err)
	}
	for k, v := range m {
		s := Status(k)
		if !s.Valid() {
			return nil, fmt.Errorf("unknown status %q; want one of %s", k, join(Statuses()))
		}
		if !codeShape.MatchString(v) {
			return nil, fmt.Errorf("status %s: code %q: want 1 to 8 letters or digits", k, v)
		}
		c[s] = v
	}
	seen := map[string]Status{}
	for _, s := range Statuses() {
		if other, dup := seen[c[s]]; dup {
			return nil, fmt.Errorf("statuses %s and %s share code %q; codes must be distinct", other, s, c[s])
		}
		seen[c[s]] = s
	}
	return c, nil
}

// Code returns the province code of s ("" for an unknown status).
func (c Codes) Code(s Status) string { return c[s] }

// Status maps a province code back to our status.
func (c Codes) Status(code string) (Status, bool) {
	for s, v := range c {
		if v == code {
			return s, true
		}
	}
	return "", false
}

// Config is the configuration of the card capability.
type Config struct {
	Codes Codes
	// TemporaryLossDays: a temporary loss reported on China-time day D lapses at 00:00
	// China time of day D+TemporaryLossDays+1, i.e. the day of the report plus that many
	// full calendar days.
	TemporaryLossDays int
	// BlacklistRetention: blacklist changes older than this are compacted away; a caller
	// asking for changes since before the compacted point must take a snapshot.
	BlacklistRetention time.Duration
	// Bank names the bank adapter; only "simulated" exists.
	Bank string
	// LocalIssuing enables POST /cards (create a card) until card-apply issues cards.
	LocalIssuing bool
}

// Settings (environment; defaults in brackets):
//
//	card_status_codes         JSON object status → province code (AAZ502), merged onto
//	                          the default [{"normal":"1","formal_loss":"2","temporary_loss":"4","cancelled":"5"}]
//	temporary_loss_days       days a temporary loss lasts before it lapses to normal [7]
//	blacklist_retention_days  days of blacklist changes kept for delta sync [30]
//	bank_adapter              "simulated" (the built-in simulated bank; development and
//	                          tests) — no real bank adapter exists yet [simulated]
//	local_card_issuing        allow POST /cards to create cards, until card-apply issues
//	                          them; keep false in production [false]
func LoadConfig(e *envconf.Env) (Config, error) {
	c := Config{
		TemporaryLossDays:  e.Int("temporary_loss_days", 7, 1, 365),
		BlacklistRetention: time.Duration(e.Int("blacklist_retention_days", 30, 1, 3650)) * 24 * time.Hour,
		Bank:               e.String("bank_adapter", "simulated"),
		LocalIssuing:       e.Bool("local_card_issuing", false),
	}
	codes, err := ParseCodes(e.String("card_status_codes", ""))
	if err != nil {
		e.Fail("card_status_codes", err.Error())
	}
	c.Codes = codes
	if c.Bank != "simulated" {
		e.Fail("bank_adapter", "only \"simulated\" exists")
	}
	return c, e.Err()
}

// LossExpiry is when a temporary loss reported at t lapses with days days: midnight
// China time at the start of the day days+1 calendar days after the report day.
func LossExpiry(t time.Time, days int) time.Time {
	y, m, d := t.In(events.ChinaTime).Date()
	return time.Date(y, m, d+days+1, 0, 0, 0, 0, events.ChinaTime)
}

// Card numbers (社保卡号, AAZ500) are a capital letter and eight digits. Card ids are
// "card-" and a UUID, so the two never look alike and {card} in a route may be either.
var cardNoShape = regexp.MustCompile(`^[A-Z][0-9]{8}$`)

// ValidCardNo reports whether s has the shape of a card number.
func ValidCardNo(s string) bool { return cardNoShape.MatchString(s) }

const idPrefix = "card-"

// personIDShape accepts the opaque person ids of shared/person and similar tokens.
var personIDShape = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// actorShape: an operator or app id. The audit log refuses anything shaped like an ID or
// phone number on top of this.
var actorShape = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,64}$`)

func validReason(r string) bool { return slices.Contains(reasons, r) }
