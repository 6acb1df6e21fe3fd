package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// ValidationError lists every problem found in an event, keyed by attribute
// ("type", "source", ...) or by data member ("data.kioskId"), so a producer
// sees all its mistakes from one rejected request.
type ValidationError struct {
	Fields map[string]string // field -> reason
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("events: invalid event: ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(e.Fields[k])
	}
	return b.String()
}

func (e *ValidationError) add(field, reason string) {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	if prev, ok := e.Fields[field]; ok {
		reason = prev + "; " + reason
	}
	e.Fields[field] = reason
}

// orNil avoids returning a typed nil inside a non-nil error interface.
func (e *ValidationError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// New builds an event of type t and validates it, so a producer cannot emit
// something receivers would reject. id is a random UUID, time is now in UTC,
// datacontenttype is application/json and data is data marshalled as JSON.
// subject is left out when empty.
func New(t Type, source, subject string, data any) (event.Event, error) {
	ev := event.New(event.CloudEventsVersionV1)
	ev.SetID(uuid.NewString())
	ev.SetType(string(t))
	ev.SetSource(source)
	ev.SetTime(time.Now().UTC())
	if subject != "" {
		ev.SetSubject(subject)
	}
	// The SDK treats a plain []byte as opaque binary (data_base64 in
	// structured mode); callers passing pre-encoded JSON mean JSON.
	if b, ok := data.([]byte); ok {
		data = json.RawMessage(b)
	}
	if err := ev.SetData(event.ApplicationJSON, data); err != nil {
		return event.Event{}, fmt.Errorf("events: encode %s data: %w", t, err)
	}
	if err := validate(ev, data); err != nil {
		return event.Event{}, err
	}
	return ev, nil
}

// Validate is the gate every receiver and the broker apply. It checks, and
// reports together as a *ValidationError:
//   - the SDK's own attribute checks (id, source, type present, ...);
//   - specversion is 1.0 and type is in the catalog;
//   - source matches the type's pattern; a {function} segment must name one
//     of the type's producers;
//   - special check: every other {x} segment must equal data member x, e.g.
//     a heartbeat from /kiosks/K1 must say kioskId "K1", so one kiosk
//     cannot report for another;
//   - datacontenttype is application/json (empty is taken as JSON);
//   - data is present and decodes strictly into the type's struct: no
//     unknown members (also not in other letter case), no trailing data;
//   - `event:"required"` and `event:"min=N"` rules, enum and Date values;
//   - the struct's own Validate() error method, if any.
func Validate(ev event.Event) error { return validate(ev, nil) }

// validate is Validate. produced, when not nil, is the value ev's data was just encoded
// from (New): if it is the type's data struct, the rules are checked on it and the data
// is not decoded again (a producer's hot path); whatever fails there is decoded after
// all, so the answer is Validate's.
func validate(ev event.Event, produced any) error {
	verr := &ValidationError{}
	if err := ev.Validate(); err != nil {
		var sdkErr event.ValidationError
		if errors.As(err, &sdkErr) {
			for k, e := range sdkErr {
				verr.add(k, e.Error())
			}
		} else {
			verr.add("event", err.Error())
		}
	}
	if ev.Context == nil {
		return verr.orNil()
	}
	if sv := ev.SpecVersion(); sv != event.CloudEventsVersionV1 {
		verr.add("specversion", fmt.Sprintf("want %q, got %q", event.CloudEventsVersionV1, sv))
	}
	jsonData := true
	if ct := ev.DataContentType(); ct != "" && !isJSONMediaType(ct) {
		verr.add("datacontenttype", fmt.Sprintf("want application/json, got %q", ct))
		jsonData = false
	}
	spec, known := catalog[Type(ev.Type())]
	if !known {
		if ev.Type() != "" { // the SDK already reported an empty type
			verr.add("type", fmt.Sprintf("unknown event type %q", ev.Type()))
		}
		return verr.orNil()
	}

	bind, sourceOK := matchSource(spec.Source, ev.Source())
	if !sourceOK {
		verr.add("source", fmt.Sprintf("want a source matching %q, got %q", spec.Source, ev.Source()))
	} else if fn, ok := bind[placeholderFunction]; ok && !slices.Contains(spec.Producers, fn) {
		verr.add("source", fmt.Sprintf("%q is not a producer of %s", fn, spec.Type))
	}

	if !jsonData {
		return verr.orNil()
	}
	ptr := spec.NewData()
	if !checkProduced(produced, ptr) && !decodeData(ev.Data(), ptr, verr) || !sourceOK {
		return verr.orNil()
	}
	v := reflect.ValueOf(ptr).Elem()
	for name, seg := range bind {
		if name == placeholderFunction {
			continue
		}
		f, _ := fieldByName(fieldsOf(v.Type()), name) // guaranteed by checkCatalog
		if got := v.Field(f.index).String(); got != seg {
			verr.add("data."+name, fmt.Sprintf("want %q (from source), got %q", seg, got))
		}
	}
	return verr.orNil()
}

// Decode validates ev and returns its data as T, which must be the data
// struct of ev's type (e.g. Decode[KioskHeartbeatData] for KioskHeartbeat).
func Decode[T any](ev event.Event) (T, error) {
	var out T
	if err := Validate(ev); err != nil {
		return out, err
	}
	spec := catalog[Type(ev.Type())]
	if want, got := spec.dataType(), reflect.TypeFor[T](); want != got {
		return out, fmt.Errorf("events: %s carries %v, not %v", spec.Type, want, got)
	}
	verr := &ValidationError{}
	if !decodeData(ev.Data(), &out, verr) {
		return out, verr // unreachable after Validate, kept as a guard
	}
	return out, nil
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == event.ApplicationJSON
}

// decodeData strictly decodes raw into ptr (a pointer to a catalog struct)
// and applies the tag rules and the struct's Validate method. It records
// problems in verr and reports whether the data was acceptable.
func decodeData(raw []byte, ptr any, verr *ValidationError) bool {
	if len(raw) == 0 {
		verr.add("data", "required")
		return false
	}
	v := reflect.ValueOf(ptr).Elem()
	fields := fieldsOf(v.Type())

	// Decoding into a map first gives member presence (the struct cannot
	// tell a missing false/0 from a sent one) and exact-case member names
	// (encoding/json matches struct fields case-insensitively).
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		verr.add("data", "want one JSON object: "+err.Error())
		return false
	}
	if members == nil {
		verr.add("data", "want a JSON object, got null")
		return false
	}
	unknown := false
	for k := range members {
		if _, ok := fieldByName(fields, k); !ok {
			verr.add("data."+k, "unknown field")
			unknown = true
		}
	}
	if unknown {
		return false
	}

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ptr); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			verr.add("data."+te.Field, fmt.Sprintf("want %v, got JSON %s", te.Type, te.Value))
			return false
		}
		// Errors from UnmarshalJSON methods (time.Time) carry no field
		// name; decode members one by one to say which one it was.
		blamed := false
		for _, f := range fields {
			if m, ok := members[f.name]; ok {
				if ferr := json.Unmarshal(m, reflect.New(f.typ).Interface()); ferr != nil {
					verr.add("data."+f.name, ferr.Error())
					blamed = true
				}
			}
		}
		if !blamed {
			verr.add("data", err.Error())
		}
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		verr.add("data", "trailing data after the JSON object")
		return false
	}

	return checkRules(ptr, fields, func(f fieldInfo) (string, bool) {
		m, ok := members[f.name]
		return string(m), ok
	}, verr)
}

// checkProduced reports whether produced is a value of the data struct ptr points to
// that passes the rules as it stands; then *ptr holds it. Where decoding could tell
// more (a required member sent as 0 or false), it answers false, and the caller decodes.
func checkProduced(produced, ptr any) bool {
	v := reflect.ValueOf(ptr).Elem()
	if produced == nil || reflect.TypeOf(produced) != v.Type() {
		return false
	}
	v.Set(reflect.ValueOf(produced))
	// A zero value may have been left out (omitempty) or sent as null: taken as absent.
	if checkRules(ptr, fieldsOf(v.Type()), func(f fieldInfo) (string, bool) { return "", !v.Field(f.index).IsZero() },
		&ValidationError{}) {
		return true
	}
	v.SetZero() // the caller decodes into it
	return false
}

// checkRules applies the tag rules and the struct's Validate method to the data struct
// ptr points to; member says whether a field's member was sent, and as what JSON.
func checkRules(ptr any, fields []fieldInfo, member func(fieldInfo) (raw string, present bool), verr *ValidationError) bool {
	v := reflect.ValueOf(ptr).Elem()
	ok := true
	fail := func(f fieldInfo, reason string) {
		verr.add("data."+f.name, reason)
		ok = false
	}
	for _, f := range fields {
		fv := v.Field(f.index)
		if f.required {
			m, present := member(f)
			switch {
			case !present || m == "null":
				fail(f, "required")
				continue
			case fv.Kind() == reflect.String && fv.Len() == 0:
				fail(f, "must not be empty")
				continue
			case f.typ == timeType && fv.Interface().(time.Time).IsZero():
				fail(f, "must not be the zero time")
				continue
			}
		}
		if f.min != nil && fv.Int() < *f.min {
			fail(f, fmt.Sprintf("want >= %d, got %d", *f.min, fv.Int()))
		}
		if fv.Kind() == reflect.String && fv.Len() > 0 {
			if vv, isV := fv.Interface().(interface{ Valid() bool }); isV && !vv.Valid() {
				fail(f, invalidReason(fv))
			}
		}
	}
	if !ok {
		return false
	}

	if vd, isV := ptr.(interface{ Validate() error }); isV {
		if err := vd.Validate(); err != nil {
			var fe *ValidationError
			if errors.As(err, &fe) {
				for k, r := range fe.Fields {
					verr.add("data."+k, r)
				}
			} else {
				verr.add("data", err.Error())
			}
			return false
		}
	}
	return true
}

func invalidReason(fv reflect.Value) string {
	if e, ok := fv.Interface().(interface{ Values() []string }); ok {
		return fmt.Sprintf("want one of %s, got %q", strings.Join(e.Values(), ", "), fv.String())
	}
	if fv.Type() == dateType {
		return fmt.Sprintf("want a date YYYY-MM-DD (China time), got %q", fv.String())
	}
	return fmt.Sprintf("invalid value %q", fv.String())
}

var (
	timeType = reflect.TypeFor[time.Time]()
	dateType = reflect.TypeFor[Date]()
)

// fieldInfo is one data struct field as seen by validation and the schema
// generator.
type fieldInfo struct {
	index    int
	name     string // JSON member name
	required bool
	min      *int64
	typ      reflect.Type
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

// fieldsOf returns the fields of a catalog struct; checkCatalog has already
// proven structFields succeeds for every one of them.
func fieldsOf(t reflect.Type) []fieldInfo {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]fieldInfo)
	}
	fs, err := structFields(t)
	if err != nil {
		panic(err) // only reachable for types outside the catalog
	}
	fieldCache.Store(t, fs)
	return fs
}

func fieldByName(fields []fieldInfo, name string) (fieldInfo, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return fieldInfo{}, false
}

// structFields reads the json and event tags of t. Data structs are kept
// flat and limited to the kinds the schema generator can express, so this
// refuses anything else rather than guess.
func structFields(t reflect.Type) ([]fieldInfo, error) {
	var out []fieldInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Anonymous {
			return nil, fmt.Errorf("%v.%s: data fields must be exported and not embedded", t, sf.Name)
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return nil, fmt.Errorf("%v.%s: needs an explicit json name", t, sf.Name)
		}
		f := fieldInfo{index: i, name: name, typ: sf.Type}
		if tag := sf.Tag.Get("event"); tag != "" {
			for opt := range strings.SplitSeq(tag, ",") {
				switch {
				case opt == "required":
					f.required = true
				case strings.HasPrefix(opt, "min="):
					n, err := strconv.ParseInt(strings.TrimPrefix(opt, "min="), 10, 64)
					if err != nil || !isInt(sf.Type) {
						return nil, fmt.Errorf("%v.%s: bad %q", t, sf.Name, opt)
					}
					f.min = &n
				default:
					return nil, fmt.Errorf("%v.%s: unknown event tag option %q", t, sf.Name, opt)
				}
			}
		}
		if _, err := fieldSchema(sf.Type); err != nil {
			return nil, fmt.Errorf("%v.%s: %w", t, sf.Name, err)
		}
		if slices.ContainsFunc(out, func(o fieldInfo) bool { return o.name == name }) {
			return nil, fmt.Errorf("%v: duplicate json name %q", t, name)
		}
		out = append(out, f)
	}
	return out, nil
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}
