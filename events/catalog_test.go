package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	all := All()
	if len(all) != 10 {
		t.Errorf("All: want 10 specs, got %d", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b Spec) int { return strings.Compare(string(a.Type), string(b.Type)) }) {
		t.Errorf("All: want sorted by Type, got %v", all)
	}
	for _, s := range all {
		if !strings.HasPrefix(string(s.Type), "cn.sscard.") || !strings.Contains(string(s.Type), ".v") {
			t.Errorf("%s: want cn.sscard.*.vN naming", s.Type)
		}
		if strings.ContainsAny(s.Description, "\n|") {
			t.Errorf("%s: want a one-line description usable in a table, got %q", s.Type, s.Description)
		}
		if p := s.NewData(); reflect.TypeOf(p).Kind() != reflect.Pointer {
			t.Errorf("%s: want NewData to return a pointer, got %T", s.Type, p)
		}
	}
	if _, ok := Lookup("cn.sscard.nope.v1"); ok {
		t.Errorf("Lookup(unknown): want false, got true")
	}
	// Lookup hands out copies: mutating one must not leak into the catalog.
	s, _ := Lookup(SMSRequested)
	s.Producers[0] = "mallory"
	if again, _ := Lookup(SMSRequested); again.Producers[0] == "mallory" {
		t.Errorf("Lookup: want an isolated Producers slice, got the shared one")
	}
}

func TestSourcePatterns(t *testing.T) {
	tests := []struct {
		pattern, source string
		want            bool
	}{
		{"/functions/card-apply", "/functions/card-apply", true},
		{"/functions/card-apply", "/functions/card-apply/", false},
		{"/functions/card-apply", "functions/card-apply", false},
		{"/kiosks/{kioskId}", "/kiosks/KSK_01.a-b", true},
		{"/kiosks/{kioskId}", "/kiosks/", false},
		{"/kiosks/{kioskId}", "/kiosks/..", false},
		{"/kiosks/{kioskId}", "/kiosks/a/b", false},
		{"/kiosks/{kioskId}", "/kiosks/a?b", false},
		{"/kiosks/{kioskId}", "/kiosks/区", false},
	}
	for _, tc := range tests {
		if _, got := matchSource(tc.pattern, tc.source); got != tc.want {
			t.Errorf("matchSource(%q, %q): want %v, got %v", tc.pattern, tc.source, tc.want, got)
		}
	}
}

func TestRoutes(t *testing.T) {
	rs := Routes()
	if !slices.IsSortedFunc(rs, func(a, b Route) int {
		if c := strings.Compare(string(a.Type), string(b.Type)); c != 0 {
			return c
		}
		return strings.Compare(a.Consumer, b.Consumer)
	}) {
		t.Errorf("Routes: want sorted by (Type, Consumer), got %v", rs)
	}
	seen := map[Route]bool{}
	for _, r := range rs {
		if _, ok := Lookup(r.Type); !ok {
			t.Errorf("route %v: want a catalog type, got unknown %s", r, r.Type)
		}
		if !isFunction(r.Consumer) {
			t.Errorf("route %v: want a known function, got %q", r, r.Consumer)
		}
		if seen[r] {
			t.Errorf("route %v: want no duplicates, got a second one", r)
		}
		seen[r] = true
	}
	for _, s := range All() {
		for _, p := range s.Producers {
			if p != edgeBridge && !isFunction(p) {
				t.Errorf("%s: want known producers, got %q", s.Type, p)
			}
		}
	}

	want := map[Type][]string{
		ApplicationSubmitted:    {"card-apply"},
		PhotoSubmitted:          {"face-match", "photo-audit-alert"},
		PhotoAudited:            {"face-match", "photo-audit-alert", "sms-alert"},
		CardStatusChanged:       {"kiosk", "loss-report", "sms-alert"},
		DiscrepancyFound:        {"sms-alert"},
		SMSRequested:            {"sms-alert"},
		KioskHeartbeat:          {"kiosk"},
		ReconciliationCompleted: {},
		SMSDelivered:            {},
		KioskCommandIssued:      {},
		"cn.sscard.nope.v1":     {},
	}
	for typ, w := range want {
		got := Subscribers(typ)
		if got == nil || !slices.Equal(got, w) {
			t.Errorf("Subscribers(%s): want %v, got %#v", typ, w, got)
		}
	}
}

func TestSchemasUpToDate(t *testing.T) {
	const hint = "run go run ./events/cmd/genschema"
	want, err := SchemaFiles()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join("schemas", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		if _, ok := want[filepath.Base(p)]; !ok {
			t.Errorf("%s: want no schema for a type outside the catalog, got one; %s", p, hint)
		}
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join("schemas", name))
		if err != nil {
			t.Errorf("schemas/%s: want the generated file, got %v; %s", name, err, hint)
			continue
		}
		if !bytes.Equal(got, w) {
			t.Errorf("schemas/%s: want the generated content, got a stale file; %s", name, hint)
		}
	}
}

func TestSchemaMatchesStruct(t *testing.T) {
	for _, s := range All() {
		b, err := Schema(s.Type)
		if err != nil {
			t.Fatalf("Schema(%s): want nil error, got %v", s.Type, err)
		}
		if !bytes.HasSuffix(b, []byte("}\n")) {
			t.Errorf("%s: want a trailing newline", s.Type)
		}
		if again, _ := Schema(s.Type); !bytes.Equal(b, again) {
			t.Errorf("%s: want deterministic output, got two different results", s.Type)
		}
		var sch struct {
			Schema               string                    `json:"$schema"`
			ID                   string                    `json:"$id"`
			Title                string                    `json:"title"`
			Type                 string                    `json:"type"`
			Properties           map[string]map[string]any `json:"properties"`
			Required             []string                  `json:"required"`
			AdditionalProperties *bool                     `json:"additionalProperties"`
		}
		if err := json.Unmarshal(b, &sch); err != nil {
			t.Fatalf("%s: %v", s.Type, err)
		}
		if sch.Schema != SchemaDialect || sch.ID != "urn:sscard:event:"+string(s.Type) || sch.Title != string(s.Type) || sch.Type != "object" {
			t.Errorf("%s: want draft 2020-12 object schema with urn $id, got %s %s %s %s", s.Type, sch.Schema, sch.ID, sch.Title, sch.Type)
		}
		if sch.AdditionalProperties == nil || *sch.AdditionalProperties {
			t.Errorf("%s: want additionalProperties false, got %v", s.Type, sch.AdditionalProperties)
		}
		// Every member of the sample data is described, and every required
		// member is in it (samples fill all required fields).
		_, _, data := sampleData(s.Type)
		raw, _ := json.Marshal(data)
		var members map[string]any
		_ = json.Unmarshal(raw, &members)
		for k := range members {
			if _, ok := sch.Properties[k]; !ok {
				t.Errorf("%s: want property %q in schema, got none", s.Type, k)
			}
		}
		for _, r := range sch.Required {
			if _, ok := members[r]; !ok {
				t.Errorf("%s: want required %q in sample data, got none", s.Type, r)
			}
		}
	}
	if _, err := Schema("cn.sscard.nope.v1"); err == nil {
		t.Errorf("Schema(unknown): want error, got nil")
	}
}

func TestSchemaEnumsAndFormats(t *testing.T) {
	b, err := Schema(KioskHeartbeat)
	if err != nil {
		t.Fatal(err)
	}
	var sch struct {
		Properties map[string]struct {
			Type    string   `json:"type"`
			Format  string   `json:"format"`
			Enum    []string `json:"enum"`
			Minimum *int64   `json:"minimum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &sch); err != nil {
		t.Fatal(err)
	}
	p := sch.Properties
	if got := p["status"].Enum; !slices.Equal(got, KioskStatus("").Values()) {
		t.Errorf("status enum: want %v, got %v", KioskStatus("").Values(), got)
	}
	if got := p["at"]; got.Type != "string" || got.Format != "date-time" {
		t.Errorf("at: want string/date-time, got %s/%s", got.Type, got.Format)
	}
	if got := p["readerPresent"].Type; got != "boolean" {
		t.Errorf("readerPresent: want boolean, got %s", got)
	}
	if got := p["queuedEvents"]; got.Type != "integer" || got.Minimum == nil || *got.Minimum != 0 {
		t.Errorf("queuedEvents: want integer minimum 0, got %+v", got)
	}
}

func TestREADMEListsEveryType(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range All() {
		if !strings.Contains(readme, "`"+string(s.Type)+"`") {
			t.Errorf("README.md: want a row for `%s`, got none", s.Type)
		}
	}
}
