// Package application is the card application (社保卡申领) of card-apply: the validation
// rules of an application, its state machine with history, the photo rules, the progress
// query (制卡进度查询) and the simulated card producer and carrier that move an application
// from photo approval to a delivered card. It has no HTTP; functions/card-apply is the
// thin layer over it.
//
// Facts and sources: ../shared/ref/domain.md §2 (identity documents), §3.5 (lifecycle);
// tender references 001 3.1.1–3.1.3, 004 §1(6), §2(4)(7)(8)(11), §3(12)(24).
package application

import (
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
)

// Field names of the request, as they appear in invalidParams.
const (
	FieldIDNumber    = "idNumber"
	FieldName        = "name"
	FieldChineseName = "chineseName"
	FieldEnglishName = "englishName"
	FieldNationality = "nationality"
	FieldEthnicity   = "ethnicity"
	FieldPhone       = "phone"
	FieldChannel     = "channel"
	FieldKioskID     = "kioskId"
)

// EthnicityOther is the ethnicity (民族) of permanent-residence applicants unless they
// give one (004 §2(7)).
const EthnicityOther = "其他"

// RuleOutletOnly is the rule a permanent-residence application through another channel
// breaks (004 §2(11)2).
const RuleOutletOnly = "004 §2(11)2"

// Request is an application as a channel sends it.
type Request struct {
	IDNumber    string `json:"idNumber"`
	Name        string `json:"name"`
	EnglishName string `json:"englishName,omitempty"`
	ChineseName string `json:"chineseName,omitempty"`
	Nationality string `json:"nationality,omitempty"`
	Ethnicity   string `json:"ethnicity,omitempty"`
	Phone       string `json:"phone"`
	Channel     string `json:"channel"`
	KioskID     string `json:"kioskId,omitempty"`
}

// Details are the applicant's personal details as validated: they are stored sealed
// (never in clear) and shown only masked.
type Details struct {
	// Name is the Chinese name (NormalizeName form); empty for a permanent-residence
	// applicant who gave none.
	Name string `json:"name,omitempty"`
	// EnglishName is required for permanent-residence applicants (upper-case).
	EnglishName string `json:"englishName,omitempty"`
	// CardName and CardNameExt are the name split for the card's name record and
	// name-extension record (004 §2(4)(8)); CardNameExt is empty when the name fits.
	CardName    string `json:"cardName"`
	CardNameExt string `json:"cardNameExt,omitempty"`
	Nationality string `json:"nationality"`
	Ethnicity   string `json:"ethnicity,omitempty"`
	Phone       string `json:"phone"`
}

// DisplayName is the name a person goes by on the platform: the Chinese name when there
// is one, else the English name.
func (d Details) DisplayName() string {
	if d.Name != "" {
		return d.Name
	}
	return d.EnglishName
}

// Validated is an application that passed every rule.
type Validated struct {
	ID      identity.ID
	Details Details
	Channel events.Channel
	KioskID string
}

// MaxKioskIDLen bounds a kiosk id.
const MaxKioskIDLen = 64

// MaxEthnicityRunes bounds the ethnicity (民族) text, e.g. 其他 or 鄂温克族.
const MaxEthnicityRunes = 8

// Validate applies the rules of an application and returns the problem to send when it
// breaks one: 400 naming every field at fault, or 422 when the fields are well formed but
// the channel may not accept this document kind (RuleOutletOnly). now is the reference
// for birth dates (read in China time).
func Validate(req Request, now time.Time) (Validated, *problem.Problem) {
	var bad []problem.InvalidParam
	add := func(field, reason string) { bad = append(bad, problem.Field(field, reason)) }
	out := Validated{}

	ch := events.Channel(strings.TrimSpace(req.Channel))
	switch {
	case ch == "":
		add(FieldChannel, "is required (one of "+strings.Join(ch.Values(), ", ")+")")
	case !ch.Valid():
		add(FieldChannel, "must be one of "+strings.Join(ch.Values(), ", "))
	}
	out.Channel = ch
	out.KioskID = strings.TrimSpace(req.KioskID)
	switch {
	case ch == events.ChannelKiosk && out.KioskID == "":
		add(FieldKioskID, "is required for the kiosk channel")
	case len(out.KioskID) > MaxKioskIDLen || !printableASCII(out.KioskID):
		add(FieldKioskID, "must be at most 64 printable ASCII characters")
	}

	id, err := identity.Parse(req.IDNumber, now)
	idOK := err == nil
	if err != nil {
		add(FieldIDNumber, reasonOf(err))
	}
	out.ID = id
	foreign := idOK && id.Kind.RequiresOutletChannel()

	// Names. Residents (and permit holders) have a Chinese name; permanent-residence
	// applicants an English one and optionally a Chinese one (004 §2(7)).
	chinese := strings.TrimSpace(req.ChineseName)
	if chinese == "" {
		chinese = strings.TrimSpace(req.Name)
	} else if n := strings.TrimSpace(req.Name); n != "" && identity.NormalizeName(n) != identity.NormalizeName(chinese) {
		add(FieldName, "differs from chineseName; send one of them")
	}
	chineseField := FieldName
	if strings.TrimSpace(req.ChineseName) != "" {
		chineseField = FieldChineseName
	}
	if chinese != "" || !foreign {
		if err := identity.ValidateName(chinese); err != nil {
			add(chineseField, reasonOf(err))
		} else {
			out.Details.Name = identity.NormalizeName(chinese)
		}
	}
	if foreign || strings.TrimSpace(req.EnglishName) != "" {
		en, err := identity.ValidateEnglishName(req.EnglishName)
		switch {
		case err != nil && foreign && strings.TrimSpace(req.EnglishName) == "":
			add(FieldEnglishName, "is required for a foreign permanent residence ID (004 §2(7))")
		case err != nil:
			add(FieldEnglishName, reasonOf(err))
		default:
			out.Details.EnglishName = en
		}
	}
	if card := out.Details.DisplayName(); card != "" {
		main, ext, err := identity.SplitForCard(card, identity.CardNameFieldBytes)
		if err != nil {
			f := chineseField
			if out.Details.Name == "" {
				f = FieldEnglishName
			}
			add(f, reasonOf(err))
		} else {
			out.Details.CardName, out.Details.CardNameExt = main, ext
		}
	}

	// Nationality (国家/地区): derived from the document where it encodes one, else 中国
	// for resident IDs; a given value must agree with the document.
	given := strings.TrimSpace(req.Nationality)
	if idOK {
		switch {
		case id.NationalityUnknown:
			if given == "" {
				add(FieldNationality, "is required: the document's nationality code is not in the built-in table")
			} else if ok := validShortText(given, 32); !ok {
				add(FieldNationality, "must be a country or region name of at most 32 letters")
			}
			out.Details.Nationality = given
		default:
			derived := id.Nationality
			if derived == "" {
				derived = identity.NationalityChina
			}
			if given != "" && given != derived {
				add(FieldNationality, "does not match the nationality the ID document encodes")
			}
			out.Details.Nationality = derived
		}
	}

	eth := strings.TrimSpace(req.Ethnicity)
	switch {
	case eth != "" && !validShortText(eth, MaxEthnicityRunes):
		add(FieldEthnicity, "must be at most 8 letters, e.g. 汉族 or 其他")
	case eth == "" && foreign:
		eth = EthnicityOther
	}
	out.Details.Ethnicity = eth

	phone, perr := pii.NormalisePhone(req.Phone)
	switch {
	case strings.TrimSpace(req.Phone) == "":
		add(FieldPhone, "is required")
	case perr != nil:
		add(FieldPhone, "must be a mainland mobile number (11 digits starting with 1)")
	}
	out.Details.Phone = phone

	if len(bad) > 0 {
		return Validated{}, problem.Invalid("the application has invalid fields", bad...)
	}
	if foreign && ch != events.ChannelOutlet {
		p := problem.New(http.StatusUnprocessableEntity, "channel-not-allowed", "Channel not allowed for this document",
			"a foreign permanent residence ID application is accepted only at a community outlet (channel outlet)").
			With("rule", RuleOutletOnly).With("idKind", id.Kind.String())
		p.InvalidParams = []problem.InvalidParam{problem.Field(FieldChannel,
			"must be outlet for a foreign permanent residence ID ("+RuleOutletOnly+")")}
		return Validated{}, p
	}
	return out, nil
}

func reasonOf(err error) string {
	if e, ok := err.(*identity.Error); ok {
		return e.Reason
	}
	return "is not valid"
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validShortText: letters (any script) and the middle dot only, at most max runes.
func validShortText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && r != identity.MiddleDot && r != ' ' {
			return false
		}
	}
	return true
}
