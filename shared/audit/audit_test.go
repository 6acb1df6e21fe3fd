package audit

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func sample() Entry {
	return Entry{Seq: 7, At: time.UnixMicro(1767225600123456), Actor: "op-1001", Channel: "outlet", Action: "card.loss.report",
		ObjectType: "card", ObjectID: "7f9c0000-0000-4000-8000-000000000001", RequestID: "req-12345678",
		Detail: map[string]string{"from": "active", "to": "temporary-loss"}}
}

func TestEveryFieldIsHashed(t *testing.T) {
	base := sample()
	h0 := chainHash(genesis, &base)
	mods := map[string]func(*Entry){
		"seq":     func(e *Entry) { e.Seq++ },
		"at":      func(e *Entry) { e.At = e.At.Add(time.Microsecond) },
		"actor":   func(e *Entry) { e.Actor = "op-1002" },
		"channel": func(e *Entry) { e.Channel = "kiosk" },
		"action":  func(e *Entry) { e.Action = "card.unlock" },
		"type":    func(e *Entry) { e.ObjectType = "person" },
		"object":  func(e *Entry) { e.ObjectID += "0" },
		"request": func(e *Entry) { e.RequestID = "" },
		"detail":  func(e *Entry) { e.Detail = map[string]string{"from": "active", "to": "formal-loss"} },
		"key":     func(e *Entry) { e.Detail = map[string]string{"from": "active", "too": "temporary-loss"} },
		// Field boundaries are unambiguous: moving a character between fields changes the hash.
		"boundary": func(e *Entry) { e.Actor, e.Channel = "op-1001o", "utlet" },
	}
	for name, mod := range mods {
		e := sample()
		mod(&e)
		if bytes.Equal(chainHash(genesis, &e), h0) {
			t.Errorf("%s: not covered by the hash", name)
		}
	}
	if bytes.Equal(chainHash(bytes.Repeat([]byte{1}, 32), &base), h0) {
		t.Error("prev hash not covered")
	}
	// Map order does not matter.
	e := sample()
	e.Detail = map[string]string{"to": "temporary-loss", "from": "active"}
	if !bytes.Equal(chainHash(genesis, &e), h0) {
		t.Error("detail order changes the hash")
	}
}

func TestEntriesRefusePIIShapes(t *testing.T) {
	for name, mod := range map[string]func(*Entry){
		"id number as object":   func(e *Entry) { e.ObjectID = "110101199003071234" },
		"id number with x":      func(e *Entry) { e.ObjectID = "11010119900307123X" },
		"old id number":         func(e *Entry) { e.Actor = "110101900307123" },
		"phone in detail":       func(e *Entry) { e.Detail["contact"] = "13812345678" },
		"phone with +86":        func(e *Entry) { e.Detail["contact"] = "tel:+8613812345678" },
		"phone inside sentence": func(e *Entry) { e.Action = "sms to 13812345678 sent" },
	} {
		e := sample()
		mod(&e)
		if err := e.validate(); !errors.Is(err, ErrLooksLikePII) {
			t.Errorf("%s: want ErrLooksLikePII, got %v", name, err)
		} else if bytes.Contains([]byte(err.Error()), []byte("1381234")) || bytes.Contains([]byte(err.Error()), []byte("19900307")) {
			t.Errorf("%s: error repeats the value", name)
		}
	}
	for name, mod := range map[string]func(*Entry){
		"uuid":        func(e *Entry) { e.ObjectID = "13812345-6781-4381-8138-123456781381" },
		"card number": func(e *Entry) { e.ObjectID = "H12345678" },
		"long token":  func(e *Entry) { e.RequestID = "a13812345678b" },
		"count":       func(e *Entry) { e.Detail["rows"] = "1234" },
	} {
		e := sample()
		mod(&e)
		if err := e.validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	e := sample()
	e.Actor = ""
	if e.validate() == nil {
		t.Error("missing actor accepted")
	}
	e = sample()
	e.Detail["x"] = "a\x00b"
	if e.validate() == nil {
		t.Error("NUL accepted")
	}
}

func TestCheckpointMessageCoversEverything(t *testing.T) {
	c := Checkpoint{Pos: 5, Hash: bytes.Repeat([]byte{1}, 32), At: time.UnixMicro(1), KeyID: "abcd"}
	m := c.message()
	for _, mod := range []func(*Checkpoint){
		func(c *Checkpoint) { c.Pos = 6 },
		func(c *Checkpoint) { c.Hash = bytes.Repeat([]byte{2}, 32) },
		func(c *Checkpoint) { c.At = time.UnixMicro(2) },
		func(c *Checkpoint) { c.KeyID = "abce" },
	} {
		d := c
		mod(&d)
		if bytes.Equal(d.message(), m) {
			t.Error("checkpoint field not signed")
		}
	}
}

// The digit-run pre-check clears only text the PII pattern cannot match.
func TestDigitRunPrecheckAgreesWithThePattern(t *testing.T) {
	const alphabet = "0123456789012345678901234567890123456789Xx+ a-"
	rng := rand.New(rand.NewPCG(1, 2))
	matched := 0
	for range 50000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		v := string(b)
		full := piiShape.MatchString(v)
		if fast := digitRun(v) >= 11 && piiShape.MatchString(v); fast != full {
			t.Fatalf("%q: pre-checked %v, pattern %v", v, fast, full)
		}
		if full {
			matched++
		}
	}
	if matched == 0 {
		t.Fatal("no sample matched the pattern: the test checks nothing")
	}
}
