package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/kiosk"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of kiosk: the registry administrators keep by region, the signed
// calls of the kiosks themselves (events, command polls, logs) and remote commands
// (001 2.1–2.3, 003 5.2, 004 §3(24)). Every route is a signed call (shared/callsign): an
// administrator is a caller of kind admin whose region is in kiosk_admins; a kiosk is the
// caller enrolled with its device ID. The rules live in shared/kiosk.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, err := open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	admin := func(fn adminFunc) runtime.HandlerFunc { return callsign.Require(v, asAdmin(svc, fn)) }
	own := func(fn kioskFunc) runtime.HandlerFunc { return callsign.Require(v, asKiosk(fn)) }
	r := runtime.NewRouter("kiosk")

	// Registry (administrators, region-scoped).
	r.Post("/kiosks", admin(register(svc)))
	r.Get("/kiosks", admin(list(svc)))
	r.Get("/kiosks/{id}", admin(get(svc)))
	r.Route(http.MethodPatch, "/kiosks/{id}", admin(update(svc)))
	r.Post("/kiosks/{id}/revoke", admin(revoke(svc)))
	r.Post("/kiosk-batches", admin(registerWorkbook(svc)))
	r.Get("/kiosk-batches/{id}/failures", admin(failureFile(svc)))
	r.Get("/kiosks/{id}/self-checks", admin(selfChecks(svc)))

	// Commands: administrators issue, the kiosk polls the same path.
	r.Post("/kiosks/{id}/commands", admin(issueOne(svc)))
	r.Post("/kiosk-commands", admin(issueMany(svc)))
	r.Get("/kiosks/{id}/commands", callsign.Require(v, byKind(asAdmin(svc, listCommands(svc)), asKiosk(poll(svc)))))

	// The kiosk's own calls (edge-bridge contract, docs/kiosk.md).
	r.Post("/kiosks/{id}/events", own(recordEvents(svc)))
	r.Post("/kiosks/{id}/logs", own(uploadLog(svc)))
	r.Get("/kiosks/{id}/logs", admin(listLogs(svc)))
	r.Get("/kiosks/{id}/logs/{log}", admin(readLog(svc)))

	// Heartbeats of bridges that still publish CloudEvents, and the offline sweep.
	r.OnEvent(events.KioskHeartbeat, d.Postgres, recordHeartbeat)
	r.OnSchedule(sweepOffline(svc))
	return r, nil
}

type (
	adminFunc func(req handler.Request, a kiosk.Admin) (handler.Response, error)
	kioskFunc func(req handler.Request, c kiosk.Caller, id string) (handler.Response, error)
)

func callerOf(req handler.Request) kiosk.Caller {
	id, _ := callsign.Caller(req)
	return kiosk.Caller{AppID: id.AppID, Kind: id.Kind, KeyID: id.KeyID}
}

// asAdmin serves fn for a signed administrator, with the region its registration holds.
func asAdmin(svc *kiosk.Service, fn adminFunc) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		a, err := svc.AuthorizeAdmin(req.Context(), callerOf(req))
		if err != nil {
			return handler.Response{}, err
		}
		return fn(req, a)
	}
}

// asKiosk serves fn for a signed kiosk caller on its own path; fn authorizes it against
// the registry (registered, not revoked, under the enrolled key) in its own transaction.
func asKiosk(fn kioskFunc) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		return fn(req, callerOf(req), runtime.Param(req, "id"))
	}
}

// byKind sends an administrator's request to admin and any other caller's to own.
func byKind(admin, own runtime.HandlerFunc) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if c := callerOf(req); c.Kind == kiosk.KindAdmin {
			return admin(req)
		}
		return own(req)
	}
}

func decodeJSON(req handler.Request, v any) error {
	ct := req.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send application/json")
	}
	if err := json.Unmarshal(req.Body, v); err != nil {
		return problem.Invalid("the body is not the expected JSON: " + err.Error())
	}
	return nil
}

func register(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		var reg kiosk.Registration
		if err := decodeJSON(req, &reg); err != nil {
			return handler.Response{}, err
		}
		k, err := svc.Register(req.Context(), a, reg)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusCreated, k)
	}
}

func list(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		q := req.QueryString
		vals := parseQuery(q)
		limit, _ := strconv.Atoi(vals["limit"])
		ks, err := svc.List(req.Context(), a, kiosk.ListFilter{Region: vals["region"], After: vals["after"], Limit: limit})
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"kiosks": ks})
	}
}

func get(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		k, err := svc.Get(req.Context(), a, runtime.Param(req, "id"))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, k)
	}
}

func update(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		var raw map[string]json.RawMessage
		if err := decodeJSON(req, &raw); err != nil {
			return handler.Response{}, err
		}
		if _, ok := raw["id"]; ok {
			return handler.Response{}, problem.Invalid("the device ID never changes",
				problem.Field("id", "cannot be edited: register the device anew"))
		}
		var e kiosk.Edit
		if err := decodeJSON(req, &e); err != nil {
			return handler.Response{}, err
		}
		k, err := svc.Update(req.Context(), a, runtime.Param(req, "id"), e)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, k)
	}
}

func revoke(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		k, err := svc.Revoke(req.Context(), a, runtime.Param(req, "id"))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, k)
	}
}

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

func registerWorkbook(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		if ct := req.Header.Get("Content-Type"); ct != xlsxType && ct != "application/octet-stream" {
			return handler.Response{}, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type",
				"Unsupported media type", "send the workbook as "+xlsxType)
		}
		res, err := svc.RegisterWorkbook(req.Context(), a, req.Body)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, res)
	}
}

func failureFile(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		id := runtime.Param(req, "id")
		book, err := svc.FailureFile(req.Context(), a, id)
		if err != nil {
			return handler.Response{}, err
		}
		h := http.Header{}
		h.Set("Content-Type", xlsxType)
		h.Set("Content-Disposition", `attachment; filename="kiosk-failures-`+id+`.xlsx"`)
		return handler.Response{StatusCode: http.StatusOK, Header: h, Body: book}, nil
	}
}

func selfChecks(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		limit, _ := strconv.Atoi(parseQuery(req.QueryString)["limit"])
		out, err := svc.SelfChecks(req.Context(), a, runtime.Param(req, "id"), limit)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"selfChecks": out})
	}
}

func issueOne(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		var o kiosk.Order
		if err := decodeJSON(req, &o); err != nil {
			return handler.Response{}, err
		}
		if len(o.KioskIDs) > 0 {
			return handler.Response{}, problem.Invalid("the kiosk is the one in the path",
				problem.Field("kioskIds", "use POST /kiosk-commands for many kiosks"))
		}
		o.KioskIDs = []string{runtime.Param(req, "id")}
		cmds, err := svc.Issue(req.Context(), a, o)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusAccepted, cmds[0])
	}
}

func issueMany(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		var o kiosk.Order
		if err := decodeJSON(req, &o); err != nil {
			return handler.Response{}, err
		}
		cmds, err := svc.Issue(req.Context(), a, o)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusAccepted, map[string]any{"commands": cmds})
	}
}

func listCommands(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		limit, _ := strconv.Atoi(parseQuery(req.QueryString)["limit"])
		cmds, err := svc.Commands(req.Context(), a, runtime.Param(req, "id"), limit)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"commands": cmds})
	}
}

func poll(svc *kiosk.Service) kioskFunc {
	return func(req handler.Request, c kiosk.Caller, id string) (handler.Response, error) {
		cmds, err := svc.Poll(req.Context(), c, id)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"commands": cmds})
	}
}

func recordEvents(svc *kiosk.Service) kioskFunc {
	return func(req handler.Request, c kiosk.Caller, id string) (handler.Response, error) {
		var b kiosk.Batch
		if err := decodeJSON(req, &b); err != nil {
			return handler.Response{}, err
		}
		res, err := svc.Record(req.Context(), c, id, b)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, res)
	}
}

func uploadLog(svc *kiosk.Service) kioskFunc {
	return func(req handler.Request, c kiosk.Caller, id string) (handler.Response, error) {
		gz := strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") ||
			strings.HasPrefix(req.Header.Get("Content-Type"), "application/gzip")
		f, err := svc.Upload(req.Context(), c, id, req.Header.Get("X-Log-Date"), req.Body, gz)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusCreated, f)
	}
}

func listLogs(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		limit, _ := strconv.Atoi(parseQuery(req.QueryString)["limit"])
		logs, err := svc.ListLogs(req.Context(), a, runtime.Param(req, "id"), limit)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"logs": logs})
	}
}

func readLog(svc *kiosk.Service) adminFunc {
	return func(req handler.Request, a kiosk.Admin) (handler.Response, error) {
		f, body, err := svc.ReadLog(req.Context(), a, runtime.Param(req, "id"), runtime.Param(req, "log"))
		if err != nil {
			return handler.Response{}, err
		}
		h := http.Header{}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if f.Gzip {
			h.Set("Content-Type", "application/gzip")
		}
		return handler.Response{StatusCode: http.StatusOK, Header: h, Body: body}, nil
	}
}

func recordHeartbeat(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	hb, err := events.Decode[events.KioskHeartbeatData](ev)
	if err != nil {
		return problem.Invalid("heartbeat data: " + err.Error())
	}
	return kiosk.RecordHeartbeat(ctx, tx, hb, ev.Source(), ev.ID())
}

func sweepOffline(svc *kiosk.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		n, err := svc.SweepOffline(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]int{"offlineAlerts": n})
	}
}

// parseQuery reads the first value of each query parameter.
func parseQuery(q string) map[string]string {
	out := map[string]string{}
	vals, _ := url.ParseQuery(q)
	for k, v := range vals {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
