package sscard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sscard/platform/shared/sscard"
	"github.com/sscard/platform/tests/vcard"
)

// direct hands APDUs to the virtual card without a reader.
type direct struct{ c *vcard.Card }

func (d direct) Transmit(cmd []byte) ([]byte, error) {
	rsp, vanish := d.c.Respond(cmd)
	if vanish {
		return nil, errors.New("card removed")
	}
	return rsp, nil
}

func TestReadWholeCard(t *testing.T) {
	for _, n := range []int{42, 7} {
		p := vcard.Sample(n)
		c, err := vcard.New(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sscard.Read(direct{c})
		if err != nil {
			t.Fatal(err)
		}
		if got.CardNo != p.CardNo || got.SSN != p.SSN || got.Name != p.Name || got.Sex != string(p.Sex) ||
			got.Ethnicity != "01" || got.SpecVersion != "3.00" || got.Generation != 3 || got.CardType != "3" ||
			got.RegionCode != "330300" || !got.IssueDate.Equal(p.IssueDate) || !got.ExpiryDate.Equal(p.ExpiryDate) ||
			!got.BirthDate.Equal(p.BirthDate) || len(got.IdentificationCode) != 32 {
			t.Fatalf("card %d read as %+v", n, got)
		}
		pub := got.Public()
		if pub.CardNo != p.CardNo || pub.IssueDate != "2024-03-15" || pub.ExpiryDate != "2034-03-15" {
			t.Fatalf("public view %+v", pub)
		}
	}
}

func TestFirstGenerationSexRecord(t *testing.T) {
	p := vcard.Sample(3)
	p.SpecVersion = "1.00"
	c, _ := vcard.New(p)
	got, err := sscard.Read(direct{c})
	if err != nil || got.Generation != 1 || got.Sex != "2" {
		t.Fatalf("%+v %v", got, err)
	}
}

// Every malformed answer fails the whole read: no partly filled card comes back.
func TestMalformedRecordsAreErrors(t *testing.T) {
	for _, f := range []sscard.Field{sscard.IdentCode, sscard.IssueDate, sscard.CardNo, sscard.SSN, sscard.Name,
		sscard.Sex, sscard.BirthDate} {
		for _, k := range []vcard.FaultKind{vcard.Short, vcard.WrongTag, vcard.BadValue, vcard.Overlong, vcard.StatusErr} {
			c, _ := vcard.New(vcard.Sample(1))
			c.SetFault(vcard.Fault{Kind: k, Field: f})
			got, err := sscard.Read(direct{c})
			if err == nil || got != nil {
				t.Errorf("%s fault %d: want an error and no card, got %+v %v", f.Name, k, got, err)
			}
			var fe *sscard.FieldError
			var se *sscard.StatusError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Errorf("%s fault %d: untyped error %v", f.Name, k, err)
			}
		}
	}
}

func TestParseRecordStrict(t *testing.T) {
	f := sscard.CardNo
	good := sscard.EncodeRecord(f, []byte("B00000019"))
	if v, err := sscard.ParseRecord(f, good); err != nil || string(v) != "B00000019" {
		t.Fatal(v, err)
	}
	for name, b := range map[string][]byte{
		"empty": {}, "tag only": {0x07}, "short": good[:8], "long": append(good, 0), "tag": append([]byte{0x08}, good[1:]...),
		"length": append([]byte{0x07, 0x08}, good[2:]...),
	} {
		if _, err := sscard.ParseRecord(f, b); err == nil {
			t.Errorf("%s: accepted %X", name, b)
		}
	}
}

func TestExchangeFollowsT0Chaining(t *testing.T) {
	c, _ := vcard.New(vcard.Sample(1))
	// SELECT answers 61xx: Exchange fetches the FCI with GET RESPONSE.
	fci, err := sscard.Exchange(direct{c}, sscard.SelectSSSE())
	if err != nil || fci[0] != 0x6F {
		t.Fatalf("%X %v", fci, err)
	}
	// A wrong Le gets 6Cxx and is sent again with the card's length.
	rd := sscard.ReadRecord(sscard.CardNo)
	rd[4] = 0x20
	v, err := sscard.Exchange(direct{c}, rd)
	if err != nil || string(v[2:]) != c2(t) {
		t.Fatalf("%q %v", v, err)
	}
	if _, err := sscard.Exchange(transmitFunc(func([]byte) ([]byte, error) { return []byte{0x90}, nil }), rd); !errors.Is(err, sscard.ErrShortResponse) {
		t.Fatalf("one-byte answer: %v", err)
	}
}

func c2(t *testing.T) string { t.Helper(); return vcard.Sample(1).CardNo }

type transmitFunc func([]byte) ([]byte, error)

func (f transmitFunc) Transmit(b []byte) ([]byte, error) { return f(b) }

func TestNameFieldLimits(t *testing.T) {
	if _, err := sscard.EncodeName("欧阳娜娜欧阳娜娜欧阳娜娜欧阳娜娜"); err == nil {
		t.Fatal("a 32-byte name fits a 30-byte field")
	}
	c := &sscard.Card{ExpiryDate: time.Date(2026, 1, 31, 0, 0, 0, 0, sscard.China)}
	if c.Expired(time.Date(2026, 1, 31, 23, 0, 0, 0, sscard.China)) || !c.Expired(time.Date(2026, 2, 1, 0, 0, 1, 0, sscard.China)) {
		t.Fatal("expiry is the whole last day")
	}
}
