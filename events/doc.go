// Package events is the single catalog of CloudEvent types exchanged by the
// platform's functions (OpenFaaS/Knative) and the kiosk edge bridge.
//
// Everything a producer or consumer needs to agree on lives here, so that the
// contract is reviewed in one place rather than re-declared per function:
//
//   - the type names ([Type]) and their specs ([Lookup], [All]): source
//     pattern, producers and the Go struct carrying the data;
//   - typed construction ([New]) and the validation gate every receiver and
//     the broker run ([Validate], [Decode]);
//   - the routing table: which function consumes which type ([Routes],
//     [Subscribers]);
//   - JSON Schemas generated from the Go structs ([Schema]), committed under
//     events/schemas for non-Go consumers (bank adapters, the kiosk firmware
//     team);
//   - HTTP transport helpers: [Sender] always sends in binary content mode,
//     [FromHTTP] accepts binary or structured.
//
// Conventions (see README.md for the table):
//
//   - Consumers deduplicate on (source, id): delivery is at-least-once.
//   - subject carries the id of the entity the event is about (application id,
//     card id, kiosk id, ...), so brokers can filter without decoding data.
//   - Data never carries personal information; see data.go.
//
// Struct tags on data structs: besides the usual `json:"name"`, the tag
// `event:"..."` holds comma-separated rules that both [Validate] and [Schema]
// read, so the schema and the gate cannot drift apart:
//
//	required   the JSON member must be present and not null; strings must be
//	           non-empty and times non-zero
//	min=N      integer fields must be >= N
//
// Data structs' enum fields use string types with Valid() and Values()
// methods; Validate rejects values outside Values(), Schema emits them as
// "enum".
package events

//go:generate go run ./cmd/genschema -dir schemas
