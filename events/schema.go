package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// SchemaDialect is the JSON Schema draft the generated schemas declare.
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// SchemaID is the $id of t's schema. A URN rather than a URL, so nothing
// suggests the schemas are served from some host.
func SchemaID(t Type) string { return "urn:sscard:event:" + string(t) }

// jsonSchema is the subset of JSON Schema the generator emits. Field order
// here is the output order; properties are sorted by encoding/json, so the
// output is deterministic.
type jsonSchema struct {
	Schema               string                 `json:"$schema,omitempty"`
	ID                   string                 `json:"$id,omitempty"`
	Title                string                 `json:"title,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Type                 string                 `json:"type"`
	Format               string                 `json:"format,omitempty"`
	MinLength            int                    `json:"minLength,omitempty"`
	Enum                 []string               `json:"enum,omitempty"`
	Minimum              *int64                 `json:"minimum,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	AdditionalProperties any                    `json:"additionalProperties,omitempty"` // false or a schema
}

// Schema returns the JSON Schema (draft 2020-12) of t's data, generated from
// the Go struct and its tags, as indented JSON ending in a newline.
func Schema(t Type) ([]byte, error) {
	spec, ok := catalog[t]
	if !ok {
		return nil, fmt.Errorf("events: unknown event type %q", t)
	}
	s := &jsonSchema{
		Schema:               SchemaDialect,
		ID:                   SchemaID(t),
		Title:                string(t),
		Description:          spec.Description,
		Type:                 "object",
		Properties:           map[string]*jsonSchema{},
		Required:             []string{},
		AdditionalProperties: false, // mirrors DisallowUnknownFields in Validate
	}
	for _, f := range fieldsOf(spec.dataType()) {
		p, err := fieldSchema(f.typ)
		if err != nil {
			return nil, err
		}
		p.Minimum = f.min
		// Validate refuses empty required strings; enums and formats
		// already exclude "".
		if f.required && p.Type == "string" && p.Enum == nil && p.Format == "" {
			p.MinLength = 1
		}
		s.Properties[f.name] = p
		if f.required {
			s.Required = append(s.Required, f.name)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // descriptions are prose, not HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil { // Encode appends the trailing newline
		return nil, err
	}
	return buf.Bytes(), nil
}

// SchemaFiles returns the contents of events/schemas keyed by file name
// ("<type>.json"). cmd/genschema writes them and a test compares them with
// the committed files, so both use this one function.
func SchemaFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	for t := range catalog {
		b, err := Schema(t)
		if err != nil {
			return nil, err
		}
		out[string(t)+".json"] = b
	}
	return out, nil
}

// fieldSchema maps a data field's Go type to its schema. Only the kinds data
// structs are allowed to use are supported; structFields relies on the error
// to refuse anything else.
func fieldSchema(t reflect.Type) (*jsonSchema, error) {
	switch {
	case t == timeType:
		return &jsonSchema{Type: "string", Format: "date-time"}, nil
	case t == dateType:
		return &jsonSchema{Type: "string", Format: "date"}, nil
	case t.Kind() == reflect.String:
		s := &jsonSchema{Type: "string"}
		if e, ok := reflect.Zero(t).Interface().(interface{ Values() []string }); ok {
			s.Enum = e.Values()
		}
		return s, nil
	case isInt(t):
		return &jsonSchema{Type: "integer"}, nil
	case t.Kind() == reflect.Bool:
		return &jsonSchema{Type: "boolean"}, nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return &jsonSchema{Type: "object", AdditionalProperties: &jsonSchema{Type: "string"}}, nil
	}
	return nil, fmt.Errorf("unsupported data field type %v", t)
}
