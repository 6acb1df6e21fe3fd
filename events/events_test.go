package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

var sampleTime = time.Date(2025, 3, 14, 1, 30, 0, 0, time.UTC)

// sampleData returns a valid source, subject and data value for t.
func sampleData(t Type) (source, subject string, data any) {
	switch t {
	case ApplicationSubmitted:
		return "/functions/card-apply", "APP-1", ApplicationSubmittedData{
			ApplicationID: "APP-1", Channel: ChannelH5, PersonRef: "P-9f2c", SubmittedAt: sampleTime,
		}
	case PhotoSubmitted:
		return "/functions/card-apply", "APP-1", PhotoSubmittedData{
			ApplicationID: "APP-1", PhotoObject: "photos/2025/03/APP-1.jpg", Channel: ChannelKiosk,
			KioskID: "KSK-0001", SubmittedAt: sampleTime,
		}
	case PhotoAudited:
		return "/functions/card-apply", "APP-1", PhotoAuditedData{
			ApplicationID: "APP-1", Result: AuditRejected, Reason: "background not white",
			Auditor: "OP-17", AuditedAt: sampleTime,
		}
	case CardStatusChanged:
		return "/functions/loss-report", "CARD-77", CardStatusChangedData{
			CardID: "CARD-77", From: "1", To: "2", Reason: "loss-report", Channel: ChannelOutlet,
			ChangedAt: sampleTime, StatusVersion: 42,
		}
	case ReconciliationCompleted:
		return "/functions/reconcile", "RUN-20250313-ICBC", ReconciliationCompletedData{
			RunID: "RUN-20250313-ICBC", BusinessDate: "2025-03-13", Bank: "102",
			Matched: 1200, Discrepancies: 2, TotalFen: 123456789,
		}
	case DiscrepancyFound:
		return "/functions/reconcile", "TXN-1", DiscrepancyFoundData{
			RunID: "RUN-20250313-ICBC", BusinessDate: "2025-03-13", Kind: DiscrepancyLong,
			AmountFen: 5000, TxnRef: "TXN-1",
		}
	case SMSRequested:
		return "/functions/photo-audit-alert", "MSG-1", SMSRequestedData{
			MessageID: "MSG-1", Template: "SMS_PHOTO_REJECTED", Params: map[string]string{"days": "3"},
			RecipientRef: "P-9f2c", Purpose: PurposeNotice,
		}
	case SMSDelivered:
		return "/functions/sms-alert", "MSG-1", SMSDeliveredData{
			MessageID: "MSG-1", Carrier: CarrierCMPP, Status: SMSStatusDelivered, DeliveredAt: sampleTime,
		}
	case KioskHeartbeat:
		return "/kiosks/KSK-0001", "KSK-0001", KioskHeartbeatData{
			KioskID: "KSK-0001", At: sampleTime, Status: KioskStatusOK, ReaderPresent: false,
			Version: "2.4.1", QueuedEvents: 0,
		}
	case KioskCommandIssued:
		return "/functions/kiosk", "KSK-0001", KioskCommandIssuedData{
			CommandID: "CMD-1", KioskID: "KSK-0001", Command: CommandSyncBlacklist, IssuedAt: sampleTime,
		}
	}
	return "", "", nil
}

func mustNew(t *testing.T, typ Type) event.Event {
	t.Helper()
	src, subj, data := sampleData(typ)
	ev, err := New(typ, src, subj, data)
	if err != nil {
		t.Fatalf("New(%s): want nil error, got %v", typ, err)
	}
	return ev
}

// rawEvent builds an event around hand-written data, bypassing New, so tests
// can send what a broken producer would.
func rawEvent(typ Type, source, data string) event.Event {
	ev := event.New()
	ev.SetID("id-1")
	ev.SetType(string(typ))
	ev.SetSource(source)
	ev.SetDataContentType(event.ApplicationJSON)
	ev.DataEncoded = []byte(data)
	return ev
}

func TestNewValidEveryType(t *testing.T) {
	for _, s := range All() {
		t.Run(string(s.Type), func(t *testing.T) {
			src, subj, data := sampleData(s.Type)
			if data == nil {
				t.Fatalf("sampleData: want a sample for %s, got none", s.Type)
			}
			before := time.Now()
			ev := mustNew(t, s.Type)
			if err := Validate(ev); err != nil {
				t.Fatalf("Validate: want nil, got %v", err)
			}
			checks := []struct{ name, want, got string }{
				{"specversion", "1.0", ev.SpecVersion()},
				{"type", string(s.Type), ev.Type()},
				{"source", src, ev.Source()},
				{"subject", subj, ev.Subject()},
				{"datacontenttype", "application/json", ev.DataContentType()},
				{"dataschema", "", ev.DataSchema()},
			}
			for _, c := range checks {
				if c.want != c.got {
					t.Errorf("%s: want %q, got %q", c.name, c.want, c.got)
				}
			}
			if _, err := uuid.Parse(ev.ID()); err != nil {
				t.Errorf("id: want a UUID, got %q", ev.ID())
			}
			if ev.Time().Location() != time.UTC || ev.Time().Before(before.Add(-time.Second)) || ev.Time().After(time.Now().Add(time.Second)) {
				t.Errorf("time: want now in UTC, got %v", ev.Time())
			}
			// Data must round-trip through the typed struct unchanged.
			got := s.NewData()
			if err := json.Unmarshal(ev.Data(), got); err != nil {
				t.Fatal(err)
			}
			if want := data; !reflect.DeepEqual(reflect.ValueOf(got).Elem().Interface(), want) {
				t.Errorf("data: want %+v, got %+v", want, got)
			}
		})
	}
}

func TestNewOmitsEmptySubjectAndAcceptsRawJSON(t *testing.T) {
	src, _, data := sampleData(KioskHeartbeat)
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := New(KioskHeartbeat, src, "", raw)
	if err != nil {
		t.Fatalf("New: want nil error, got %v", err)
	}
	if ev.Subject() != "" {
		t.Errorf("subject: want empty, got %q", ev.Subject())
	}
	if ev.DataBase64 {
		t.Errorf("DataBase64: want false for JSON bytes, got true")
	}
}

func TestNewRejectsInvalid(t *testing.T) {
	_, err := New(KioskHeartbeat, "/kiosks/OTHER", "", KioskHeartbeatData{KioskID: "KSK-0001"})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("want *ValidationError, got %T %v", err, err)
	}
}

func TestValidateRejects(t *testing.T) {
	hb := func(data string) event.Event { return rawEvent(KioskHeartbeat, "/kiosks/K1", data) }
	const okHB = `"at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"version":"1","queuedEvents":0`
	tests := []struct {
		name      string
		ev        event.Event
		wantField string
	}{
		{"unknown type", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetType("cn.sscard.nope.v1")
			return ev
		}(), "type"},
		{"bad source", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetSource("/kiosk/KSK-0001")
			return ev
		}(), "source"},
		{"source with extra segment", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetSource("/kiosks/KSK-0001/x")
			return ev
		}(), "source"},
		{"source segment with bad characters", rawEvent(KioskHeartbeat, "/kiosks/K%201", `{"kioskId":"K%201",`+okHB+`}`), "source"},
		{"function source not a producer", func() event.Event {
			ev := mustNew(t, SMSRequested)
			ev.SetSource("/functions/reconcile")
			return ev
		}(), "source"},
		{"missing id", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetID("")
			return ev
		}(), "id"},
		{"old specversion", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetSpecVersion("0.3")
			return ev
		}(), "specversion"},
		{"non-JSON content type", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetDataContentType("text/plain")
			return ev
		}(), "datacontenttype"},
		{"no data", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.DataEncoded = nil
			return ev
		}(), "data"},
		{"non-JSON data", hb(`kioskId=K1`), "data"},
		{"null data", hb(`null`), "data"},
		{"array data", hb(`[]`), "data"},
		{"trailing data", hb(`{"kioskId":"K1",` + okHB + `} {}`), "data"},
		{"missing required field", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"queuedEvents":0}`), "data.version"},
		{"missing required bool", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","version":"1","queuedEvents":0}`), "data.readerPresent"},
		{"null required field", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"version":null,"queuedEvents":0}`), "data.version"},
		{"empty required string", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"version":"","queuedEvents":0}`), "data.version"},
		{"zero time", hb(`{"kioskId":"K1","at":"0001-01-01T00:00:00Z","status":"ok","readerPresent":true,"version":"1","queuedEvents":0}`), "data.at"},
		{"unknown extra field", hb(`{"kioskId":"K1",` + okHB + `,"extra":1}`), "data.extra"},
		{"field in wrong case", hb(`{"KioskId":"K1",` + okHB + `}`), "data.KioskId"},
		{"unparsable time", hb(`{"kioskId":"K1","at":"yesterday","status":"ok","readerPresent":true,"version":"1","queuedEvents":0}`), "data.at"},
		{"wrong JSON type", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"version":"1","queuedEvents":"3"}`), "data.queuedEvents"},
		{"below minimum", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"ok","readerPresent":true,"version":"1","queuedEvents":-1}`), "data.queuedEvents"},
		{"bad enum", hb(`{"kioskId":"K1","at":"2025-03-14T01:30:00Z","status":"broken","readerPresent":true,"version":"1","queuedEvents":0}`), "data.status"},
		{"kiosk id mismatch with source", hb(`{"kioskId":"K2",` + okHB + `}`), "data.kioskId"},
		{"rejected photo without reason", rawEvent(PhotoAudited, "/functions/card-apply",
			`{"applicationId":"A","result":"rejected","auditor":"OP","auditedAt":"2025-03-14T01:30:00Z"}`), "data.reason"},
		{"replacement without the card it replaces", rawEvent(ApplicationSubmitted, "/functions/card-apply",
			`{"applicationId":"A","channel":"h5","personRef":"P","submittedAt":"2025-03-14T01:30:00Z","kind":"renewal"}`), "data.replacesCardId"},
		{"replaced card on a first application", rawEvent(ApplicationSubmitted, "/functions/card-apply",
			`{"applicationId":"A","channel":"h5","personRef":"P","submittedAt":"2025-03-14T01:30:00Z","replacesCardId":"card-1"}`), "data.replacesCardId"},
		{"unknown application kind", rawEvent(ApplicationSubmitted, "/functions/card-apply",
			`{"applicationId":"A","channel":"h5","personRef":"P","submittedAt":"2025-03-14T01:30:00Z","kind":"upgrade","replacesCardId":"card-1"}`), "data.kind"},
		{"bad business date", rawEvent(DiscrepancyFound, "/functions/reconcile",
			`{"runId":"R","businessDate":"2025-02-30","kind":"short","amountFen":1,"txnRef":"T"}`), "data.businessDate"},
		{"status version zero", rawEvent(CardStatusChanged, "/functions/loss-report",
			`{"cardId":"C","from":"1","to":"2","reason":"r","channel":"h5","changedAt":"2025-03-14T01:30:00Z","statusVersion":0}`), "data.statusVersion"},
		{"no-op status change", rawEvent(CardStatusChanged, "/functions/loss-report",
			`{"cardId":"C","from":"1","to":"1","reason":"r","channel":"h5","changedAt":"2025-03-14T01:30:00Z","statusVersion":3}`), "data.to"},
		{"sms param not a string", rawEvent(SMSRequested, "/functions/qr-code",
			`{"messageId":"M","template":"T","params":{"n":1},"recipientRef":"P","purpose":"code"}`), "data.params"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.ev)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want *ValidationError, got %T %v", err, err)
			}
			if _, ok := verr.Fields[tc.wantField]; !ok {
				t.Errorf("want field %q reported, got %v", tc.wantField, verr.Fields)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		ev   event.Event
	}{
		{"approved photo without reason", rawEvent(PhotoAudited, "/functions/card-apply",
			`{"applicationId":"A","result":"approved","auditor":"OP","auditedAt":"2025-03-14T01:30:00Z"}`)},
		{"replacement application", rawEvent(ApplicationSubmitted, "/functions/card-apply",
			`{"applicationId":"A","channel":"h5","personRef":"P","submittedAt":"2025-03-14T01:30:00Z","kind":"reissue","replacesCardId":"card-1"}`)},
		{"optional fields absent", rawEvent(SMSRequested, "/functions/loss-report",
			`{"messageId":"M","template":"T","recipientRef":"P","purpose":"alert"}`)},
		{"content type with parameters", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetDataContentType("application/json; charset=utf-8")
			return ev
		}()},
		{"empty content type means JSON", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetDataContentType("")
			return ev
		}()},
		{"extension attributes", func() event.Event {
			ev := mustNew(t, KioskHeartbeat)
			ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			return ev
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(tc.ev); err != nil {
				t.Errorf("want nil, got %v", err)
			}
		})
	}
}

func TestValidationErrorSorted(t *testing.T) {
	err := &ValidationError{Fields: map[string]string{"type": "b", "data.x": "a", "source": "c"}}
	want := "events: invalid event: data.x: a; source: c; type: b"
	if got := err.Error(); got != want {
		t.Errorf("want %q, got %q", want, got)
	}
}

func TestDecode(t *testing.T) {
	ev := mustNew(t, KioskHeartbeat)
	got, err := Decode[KioskHeartbeatData](ev)
	if err != nil {
		t.Fatalf("want nil error, got %v", err)
	}
	if _, _, want := sampleData(KioskHeartbeat); !reflect.DeepEqual(got, want) {
		t.Errorf("want %+v, got %+v", want, got)
	}

	if _, err := Decode[PhotoAuditedData](ev); err == nil || strings.Contains(err.Error(), "invalid event") {
		t.Errorf("wrong type: want a type mismatch error, got %v", err)
	}

	ev.SetSource("/kiosks/OTHER")
	_, err = Decode[KioskHeartbeatData](ev)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Errorf("invalid event: want *ValidationError, got %T %v", err, err)
	}
}

func TestDate(t *testing.T) {
	tests := []struct {
		d    Date
		want bool
	}{
		{"2025-03-13", true},
		{"2024-02-29", true},
		{"2025-02-29", false},
		{"2025-3-13", false},
		{"20250313", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := tc.d.Valid(); got != tc.want {
			t.Errorf("Date(%q).Valid(): want %v, got %v", tc.d, tc.want, got)
		}
	}
	// 2025-03-13 16:30 UTC is already the 14th in Beijing.
	if got, want := DateOf(time.Date(2025, 3, 13, 16, 30, 0, 0, time.UTC)), Date("2025-03-14"); got != want {
		t.Errorf("DateOf: want %q, got %q", want, got)
	}
	tm, err := Date("2025-03-14").Time()
	if want := time.Date(2025, 3, 13, 16, 0, 0, 0, time.UTC); err != nil || !tm.Equal(want) {
		t.Errorf("Time: want %v, got %v (%v)", want, tm, err)
	}
}

func TestEnumValues(t *testing.T) {
	enums := []interface {
		Values() []string
	}{Channel(""), AuditResult(""), ApplicationKind(""), DiscrepancyKind(""), SMSPurpose(""), SMSCarrier(""), SMSStatus(""), KioskStatus(""), KioskCommand("")}
	for _, e := range enums {
		for _, v := range e.Values() {
			ev := reflect.ValueOf(v).Convert(reflect.TypeOf(e)).Interface().(interface{ Valid() bool })
			if !ev.Valid() {
				t.Errorf("%T(%q).Valid(): want true, got false", e, v)
			}
		}
		if reflect.ValueOf("nope").Convert(reflect.TypeOf(e)).Interface().(interface{ Valid() bool }).Valid() {
			t.Errorf("%T(\"nope\").Valid(): want false, got true", e)
		}
	}
}

// New checks a typed value's rules on the value itself (no decode); its answer must be the
// one decoding gives, for valid samples and for each field emptied or set to a stray
// value.
func TestNewAnswersAsDecoding(t *testing.T) {
	for _, s := range All() {
		src, subj, data := sampleData(s.Type)
		variants := []any{data}
		v := reflect.ValueOf(data)
		for i := range v.NumField() {
			zeroed := reflect.New(v.Type()).Elem()
			zeroed.Set(v)
			zeroed.Field(i).SetZero()
			variants = append(variants, zeroed.Interface())
			if f := zeroed.Field(i); f.Kind() == reflect.String {
				f.SetString("stray")
				variants = append(variants, zeroed.Interface())
			}
			if f := zeroed.Field(i); f.CanInt() {
				f.SetInt(-1)
				variants = append(variants, zeroed.Interface())
			}
		}
		rejected := 0
		for _, d := range variants {
			raw, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			_, typedErr := New(s.Type, src, subj, d)
			_, rawErr := New(s.Type, src, subj, raw)
			if typedErr != nil {
				rejected++
			}
			if (typedErr == nil) != (rawErr == nil) || typedErr != nil && typedErr.Error() != rawErr.Error() {
				t.Errorf("%s %+v: typed value gives %v, its JSON gives %v", s.Type, d, typedErr, rawErr)
			}
		}
		if rejected == 0 {
			t.Errorf("%s: no variant was rejected; the test checks nothing", s.Type)
		}
	}
}
