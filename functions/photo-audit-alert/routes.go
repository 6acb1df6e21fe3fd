package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/photoaudit"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
	"github.com/sscard/platform/shared/workday"
)

// staffOnly admits signed callers of kind staff (callsign.Require has checked the
// signature and that the caller's routes include this one).
func staffOnly(fn runtime.HandlerFunc) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if id, ok := callsign.Caller(req); !ok || id.Kind != channelauth.KindStaff {
			return handler.Response{}, channelauth.Mismatch("photo-audit reports and the calendar are for staff callers")
		}
		return fn(req)
	}
}

func actor(req handler.Request) photoaudit.Actor {
	id, _ := callsign.Caller(req)
	return photoaudit.Actor{ID: id.AppID, RequestID: runtime.RequestID(req)}
}

// clockEvent maps the clock's errors: an event that can never apply is rejected (422,
// dead-lettered); anything else is retried by the broker.
func clockEvent(fn func(context.Context, pgx.Tx, event.Event) error) runtime.EventFunc {
	return func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		err := fn(ctx, tx, ev)
		if errors.Is(err, photoaudit.ErrBadEvent) {
			return problem.New(http.StatusUnprocessableEntity, "event-rejected", "Event cannot be applied", err.Error())
		}
		return err
	}
}

// pingType is a Knative PingSource tick; its ce-time is when the tick was due.
const pingType = "dev.knative.sources.ping"

// scheduled runs the day's alert. With photo_audit_trigger_clock (development and tests)
// a PingSource tick's time is the run's instant, so a test can run any day.
func scheduled(svc *photoaudit.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		now := time.Now()
		if svc.Config.TriggerClock && req.Header.Get("Ce-Type") == pingType {
			if t, err := time.Parse(time.RFC3339, req.Header.Get("Ce-Time")); err == nil {
				now = t
			}
		}
		res, err := svc.Run(req.Context(), now)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, res)
	}
}

// readQuery: ?threshold=3&provider=…&asOf=2026-12-09 (all optional: the configured
// threshold, every provider, today in China time).
func readQuery(svc *photoaudit.Service, req handler.Request) (photoaudit.Query, error) {
	v, err := url.ParseQuery(req.QueryString)
	if err != nil {
		return photoaudit.Query{}, problem.Invalid("the query string is not readable")
	}
	var q photoaudit.Query
	var params []problem.InvalidParam
	if s := v.Get("threshold"); s != "" {
		if q.Threshold, err = strconv.Atoi(s); err != nil || q.Threshold < 1 {
			params = append(params, problem.Field("threshold", "want whole working days from 1 to 250"))
		}
	}
	if s := v.Get("asOf"); s != "" {
		if q.AsOf, err = workday.ParseDate(s); err != nil {
			params = append(params, problem.Field("asOf", "want a date YYYY-MM-DD (China time)"))
		}
	}
	q.Provider = v.Get("provider")
	if len(params) > 0 {
		return q, problem.Invalid("the query is not valid", params...)
	}
	return q, inputProblem(svc.Check(&q, time.Now()))
}

// GET /overdue → overdue count per provider and the total.
func overdue(svc *photoaudit.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		q, err := readQuery(svc, req)
		if err != nil {
			return handler.Response{}, err
		}
		rep, err := svc.Overdue(req.Context(), q)
		if err != nil {
			return handler.Response{}, inputProblem(err)
		}
		return runtime.JSON(http.StatusOK, rep)
	}
}

// GET /overdue/export[/full] → xlsx of the overdue people, masked or in full.
func export(svc *photoaudit.Service, full bool) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		q, err := readQuery(svc, req)
		if err != nil {
			return handler.Response{}, err
		}
		x, err := svc.Export(req.Context(), q, full, actor(req))
		if err != nil {
			return handler.Response{}, inputProblem(err)
		}
		h := http.Header{}
		h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		h.Set("Content-Disposition", `attachment; filename="`+x.FileName+`"`)
		h.Set("X-Export-Rows", strconv.Itoa(x.Rows))
		h.Set("Cache-Control", "no-store")
		return handler.Response{StatusCode: http.StatusOK, Header: h, Body: x.XLSX}, nil
	}
}

type dayView struct {
	Date string `json:"date"`
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// GET /calendar[?year=2026] → the exceptions (holidays, make-up working days).
func calendar(svc *photoaudit.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		v, _ := url.ParseQuery(req.QueryString)
		year := 0
		if s := v.Get("year"); s != "" {
			var err error
			if year, err = strconv.Atoi(s); err != nil || year < 1900 || year > 9999 {
				return handler.Response{}, problem.Invalid("the query is not valid", problem.Field("year", "want a year such as 2026"))
			}
		}
		cal, err := svc.Calendar(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		out := []dayView{}
		for _, d := range cal.Days() {
			if year == 0 || d.Date.Year() == year {
				out = append(out, dayView{Date: d.Date.String(), Kind: string(d.Kind), Name: d.Name})
			}
		}
		return runtime.JSON(http.StatusOK, map[string]any{"days": out, "covers": year == 0 || cal.Covers(year)})
	}
}

func pathDate(req handler.Request) (workday.Date, error) {
	d, err := workday.ParseDate(runtime.Param(req, "date"))
	if err != nil {
		return d, problem.Invalid("the path is not valid", problem.Field("date", "want a date YYYY-MM-DD"))
	}
	return d, nil
}

// PUT /calendar/{date} {"kind": "holiday"|"workday", "name": "春节"} → the entry.
func setDay(svc *photoaudit.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		d, err := pathDate(req)
		if err != nil {
			return handler.Response{}, err
		}
		var in struct{ Kind, Name string }
		if len(req.Body) == 0 || json.Unmarshal(req.Body, &in) != nil {
			return handler.Response{}, problem.Invalid("a JSON body {kind, name} is required", problem.Field("kind", "holiday or workday"))
		}
		day := workday.Day{Date: d, Kind: workday.Kind(in.Kind), Name: in.Name}
		if err := svc.SetDay(req.Context(), day, actor(req)); err != nil {
			return handler.Response{}, inputProblem(err)
		}
		return runtime.JSON(http.StatusOK, dayView{Date: d.String(), Kind: in.Kind, Name: in.Name})
	}
}

// DELETE /calendar/{date} → 204; 404 when the day has no entry.
func removeDay(svc *photoaudit.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		d, err := pathDate(req)
		if err != nil {
			return handler.Response{}, err
		}
		if err := svc.RemoveDay(req.Context(), d, actor(req)); err != nil {
			return handler.Response{}, inputProblem(err)
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

// inputProblem maps the domain's errors to problems; others go to the runtime (503 for
// an outage, 500 otherwise).
func inputProblem(err error) error {
	var ie *photoaudit.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		params := make([]problem.InvalidParam, 0, len(ie.Fields))
		for f, reason := range ie.Fields {
			params = append(params, problem.Field(f, reason))
		}
		return problem.Invalid("the request was not carried out", params...)
	case errors.Is(err, photoaudit.ErrNotFound):
		return problem.NotFound("no calendar entry on this day")
	}
	return err
}
