package main

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/reconcile"
	"github.com/sscard/platform/shared/runtime"
)

// open assembles the job from the function's settings (reconcile.LoadConfig lists them).
func open(d *platform.Deps) (*reconcile.Service, error) {
	if d.Postgres == nil || d.S3 == nil {
		return nil, errors.New("reconcile needs Postgres and the object store")
	}
	cfg, err := reconcile.LoadConfig(d.Env)
	if err != nil {
		return nil, err
	}
	// No real payment channel adapter exists yet: refunds go to the simulated channel.
	d.Log.Warn("refunds go to the SIMULATED payment channel (development/test only)")
	return &reconcile.Service{Pool: d.Postgres, Objects: reconcile.S3Objects{Client: d.S3}, Audit: d.Audit,
		Channel: &reconcile.SimulatedChannel{Pool: d.Postgres}, Config: cfg}, nil
}

// staff serves fn to signed callers of the staff kind only; fn gets the caller's app id.
func staff(v *callsign.Verifier, fn func(handler.Request, string) (handler.Response, error)) runtime.HandlerFunc {
	return callsign.Require(v, func(req handler.Request) (handler.Response, error) {
		id, ok := callsign.Caller(req)
		if !ok || id.Kind != channelauth.KindStaff {
			return handler.Response{}, channelauth.Mismatch("reconciliation is for staff callers")
		}
		return fn(req, id.AppID)
	})
}

// scheduled is the daily job: every configured channel for yesterday (China time), then
// the approved refunds the channel has not answered yet. cron-connector's POST and a
// PingSource event start the same job; runs that find no statement are recorded failed
// and named in the answer, so a missing file is seen.
func scheduled(svc *reconcile.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		trigger := reconcile.TriggerSchedule
		if events.IsCloudEvent(req.Header) {
			trigger = reconcile.TriggerPing
		}
		date := time.Now().In(reconcile.China).AddDate(0, 0, -1).Format(time.DateOnly)
		type outcome struct {
			Channel string         `json:"channel"`
			Run     *reconcile.Run `json:"run,omitempty"`
			Error   string         `json:"error,omitempty"`
		}
		var out []outcome
		for _, ch := range svc.Config.Channels {
			run, err := svc.Run(req.Context(), reconcile.RunRequest{Channel: ch, Date: date, Trigger: trigger, Actor: "system",
				RequestID: runtime.RequestID(req)})
			o := outcome{Channel: ch, Run: run}
			switch {
			case err == nil:
			case errors.Is(err, reconcile.ErrNoStatement), errors.Is(err, reconcile.ErrRunInProgress), errors.Is(err, reconcile.ErrDigest):
				o.Error = err.Error()
			default:
				return handler.Response{}, err
			}
			out = append(out, o)
		}
		sent, err := svc.SendApproved(req.Context(), runtime.RequestID(req))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"businessDate": date, "trigger": trigger, "runs": out, "refundsSent": sent})
	}
}

// startRun: POST /runs {channel, date} → the finished run (201), or 409 while one runs.
func startRun(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, actor string) (handler.Response, error) {
		var in struct {
			Channel string `json:"channel"`
			Date    string `json:"date"`
		}
		if err := runtime.DecodeJSON(req, &in); err != nil {
			return handler.Response{}, err
		}
		run, err := svc.Run(req.Context(), reconcile.RunRequest{Channel: in.Channel, Date: in.Date, Trigger: reconcile.TriggerManual,
			Actor: actor, RequestID: runtime.RequestID(req)})
		if err != nil {
			return handler.Response{}, runProblem(err, run)
		}
		res, err := runtime.JSON(http.StatusCreated, run)
		if err == nil {
			res.Header.Set("Location", "/runs/"+run.RunID)
		}
		return res, err
	}
}

func runProblem(err error, run *reconcile.Run) error {
	var ie *reconcile.InputError
	switch {
	case errors.As(err, &ie):
		return problem.Invalid("the run was not started", problem.Field(ie.Field, ie.Reason))
	case errors.Is(err, reconcile.ErrRunInProgress):
		return problem.Conflict("a run of this channel and date is in progress; try again when it has finished")
	case errors.Is(err, reconcile.ErrNoStatement), errors.Is(err, reconcile.ErrDigest):
		p := problem.New(http.StatusUnprocessableEntity, "statement-unusable", "The statement cannot be reconciled", err.Error())
		if run != nil {
			p = p.With("runId", run.RunID)
		}
		return p
	case errors.Is(err, reconcile.ErrNotFound):
		return problem.NotFound("no such run, report or refund")
	}
	return err
}

func listRuns(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		q, page, err := query(req, "channel", "date", "status", "current")
		if err != nil {
			return handler.Response{}, err
		}
		runs, total, err := svc.Runs(req.Context(), reconcile.RunFilter{Channel: q.Get("channel"), Date: q.Get("date"),
			Status: q.Get("status"), CurrentOnly: q.Get("current") == "true"}, page)
		if err != nil {
			return handler.Response{}, err
		}
		return paged(runs, total, page)
	}
}

func getRun(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		run, err := svc.GetRun(req.Context(), runtime.Param(req, "id"))
		if err != nil {
			return handler.Response{}, runProblem(err, nil)
		}
		return runtime.JSON(http.StatusOK, run)
	}
}

func runSummary(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		s, err := svc.Summary(req.Context(), runtime.Param(req, "id"))
		if err != nil {
			return handler.Response{}, runProblem(err, nil)
		}
		return runtime.JSON(http.StatusOK, map[string]any{"runId": runtime.Param(req, "id"), "summary": s})
	}
}

// runReport: GET /runs/{id}/report?format=xlsx|csv → the stored report.
func runReport(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		q, _, err := query(req, "format")
		if err != nil {
			return handler.Response{}, err
		}
		format := q.Get("format")
		if format == "" {
			format = "xlsx"
		}
		if format != "xlsx" && format != "csv" {
			return handler.Response{}, problem.Invalid("no such report", problem.Field("format", "want xlsx or csv"))
		}
		body, key, err := svc.Report(req.Context(), runtime.Param(req, "id"), format)
		if err != nil {
			return handler.Response{}, runProblem(err, nil)
		}
		h := http.Header{}
		h.Set("Content-Type", map[string]string{"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
			"csv": "text/csv; charset=utf-8"}[format])
		h.Set("Content-Disposition", `attachment; filename="`+path(key)+`"`)
		return handler.Response{StatusCode: http.StatusOK, Header: h, Body: body}, nil
	}
}

func path(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

// listDiscrepancies: GET /discrepancies?run=…|channel=…&date=…&class=…&merchant=…&page=…&pageSize=…
// (without run: the current runs).
func listDiscrepancies(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		q, page, err := query(req, "run", "channel", "date", "class", "merchant")
		if err != nil {
			return handler.Response{}, err
		}
		if c := q.Get("class"); c != "" && !validClass(c) {
			return handler.Response{}, problem.Invalid("no such class", problem.Field("class", "want one of the classes of docs/reconcile.md"))
		}
		ds, total, err := svc.Discrepancies(req.Context(), reconcile.DiscrepancyFilter{RunID: q.Get("run"), Channel: q.Get("channel"),
			Date: q.Get("date"), Class: q.Get("class"), Merchant: q.Get("merchant")}, page)
		if err != nil {
			return handler.Response{}, err
		}
		return paged(ds, total, page)
	}
}

func validClass(c string) bool {
	for _, k := range reconcile.Classes() {
		if string(k) == c {
			return true
		}
	}
	return false
}

func listRefunds(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		q, page, err := query(req, "status")
		if err != nil {
			return handler.Response{}, err
		}
		rs, total, err := svc.Refunds(req.Context(), q.Get("status"), page)
		if err != nil {
			return handler.Response{}, err
		}
		return paged(rs, total, page)
	}
}

func getRefund(svc *reconcile.Service) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, _ string) (handler.Response, error) {
		r, err := svc.GetRefund(req.Context(), runtime.Param(req, "refundNo"))
		if err != nil {
			return handler.Response{}, runProblem(err, nil)
		}
		return runtime.JSON(http.StatusOK, r)
	}
}

// decideRefund: POST /refunds/{refundNo}/approve|reject → the refund; an approval is
// sent to the payment channel at once, and its answer closes the refund.
func decideRefund(svc *reconcile.Service, approve bool) func(handler.Request, string) (handler.Response, error) {
	return func(req handler.Request, actor string) (handler.Response, error) {
		r, err := svc.Decide(req.Context(), runtime.Param(req, "refundNo"), approve, actor, runtime.RequestID(req))
		var se *reconcile.RefundStateError
		if errors.As(err, &se) {
			return handler.Response{}, problem.Conflict(se.Error()).With("status", se.Status)
		}
		if err != nil {
			return handler.Response{}, runProblem(err, nil)
		}
		return runtime.JSON(http.StatusOK, r)
	}
}

// query parses the query string, allowing only names (and page, pageSize).
func query(req handler.Request, names ...string) (url.Values, reconcile.Page, error) {
	q, err := url.ParseQuery(req.QueryString)
	page := reconcile.Page{Number: 1, Size: 50}
	if err != nil {
		return nil, page, problem.Invalid("the query string is not readable")
	}
	allowed := map[string]bool{"page": true, "pageSize": true}
	for _, n := range names {
		allowed[n] = true
	}
	var params []problem.InvalidParam
	for k := range q {
		if !allowed[k] {
			params = append(params, problem.Field(k, "unknown parameter"))
		}
	}
	if v := q.Get("date"); v != "" {
		if _, err := reconcile.ParseDate(v); err != nil {
			params = append(params, problem.Field("date", "want yyyy-mm-dd"))
		}
	}
	if v := q.Get("page"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1_000_000 {
			params = append(params, problem.Field("page", "want a page number from 1"))
		} else {
			page.Number = n
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > reconcile.MaxPageSize {
			params = append(params, problem.Field("pageSize", "want 1 to "+strconv.Itoa(reconcile.MaxPageSize)))
		} else {
			page.Size = n
		}
	}
	if len(params) > 0 {
		return nil, page, problem.Invalid("the query is not acceptable", params...)
	}
	return q, page, nil
}

func paged[T any](items []T, total int64, page reconcile.Page) (handler.Response, error) {
	if items == nil {
		items = []T{}
	}
	return runtime.JSON(http.StatusOK, map[string]any{"items": items, "total": total, "page": page.Number, "pageSize": page.Size})
}
