package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/application"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// Headers a request may name its channel and identity with. On the bank, outlet and
// kiosk channels they are claims checked against the signed caller (shared/channelauth):
// the caller's app id is what is recorded.
const (
	headerOperator = "X-Operator-Id" // operator or auditor, opaque id (unsigned channels)
	headerKiosk    = "X-Kiosk-Id"    // kiosk taking the photo: must be the signed kiosk
	headerChannel  = "X-Channel"     // channel of an operator action
)

// New wires the routes of card-apply: applications with photo, identity checks, photo
// audit, progress and logistics, activation, replacement (补换卡) of a lost, damaged or
// expired card (001 3.1, 002, 004 §1(6) §2 §3(12)(24)). Requests on the bank, outlet and
// kiosk channels are signed calls (channelauth.Route).
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, err := application.Open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	g := &channelauth.Gate{V: v}
	r := runtime.NewRouter("card-apply")
	r.Post("/applications", channelauth.Route(g, readApplication, apply(svc)))
	// 补换卡: reissue (补卡) or renewal (换卡); the body names its channel like an application.
	r.Post("/replacements", channelauth.Route(g, readReplacement, applyReplacement(svc)))
	r.Get("/applications/{id}", g.Open(get(svc)))
	r.Route(http.MethodPut, "/applications/{id}/photo", channelauth.Route(g, readPhoto, uploadPhoto(svc)))
	r.Post("/applications/{id}/photo-audit", channelauth.Route(g, readPhotoAudit, auditPhoto(svc)))
	r.Post("/applications/{id}/activate", channelauth.Route(g, readHolderAction, holderAction(svc.Activate)))
	// Before production only (撤销申请); 409 naming the state after that.
	r.Post("/applications/{id}/withdraw", channelauth.Route(g, readHolderAction, holderAction(svc.Withdraw)))
	// Progress by ID number: signed counter callers only, the number in the body (never
	// in a URL or access log); GET with the number in the query is gone.
	r.Post("/progress", callsign.Require(v, progress(svc)))
	r.Get("/progress", progressMoved)
	r.Post("/production/advance", advance(svc))
	r.Post("/batches", applyBatch(svc)) // employer batch (xlsx), 001 2.1
	// The simulated producer lists every submitted application (申领名单).
	r.OnEvent(events.ApplicationSubmitted, d.Postgres, svc.OnSubmitted)
	return r, nil
}

func notFound(err error) error {
	if errors.Is(err, application.ErrNotFound) {
		return problem.NotFound("no such application")
	}
	return err
}

func decode(body []byte, v any) error {
	if len(body) == 0 {
		return problem.Invalid("a JSON body is required")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return problem.Invalid("the body is not the expected JSON object")
	}
	return nil
}

func actor(req handler.Request, id, channel string) application.Actor {
	return application.Actor{ID: id, Channel: channel, RequestID: runtime.RequestID(req)}
}

// applicationInput is an application, and its photo when it came with one.
type applicationInput struct {
	application.Request
	photo *application.PhotoUpload
}

// readApplication: the channel and kiosk are in the body (a JSON object, or a multipart
// form with the photo), the operator in a header.
func readApplication(req handler.Request) (applicationInput, channelauth.Claim, error) {
	var in applicationInput
	var err error
	if boundary, ok := isMultipart(req); ok {
		in.Request, in.photo, err = readApplicationForm(req.Body, boundary)
	} else {
		err = decode(req.Body, &in.Request)
	}
	return in, claimOf(req, in.Request), err
}

func readReplacement(req handler.Request) (application.ReplacementRequest, channelauth.Claim, error) {
	var in application.ReplacementRequest
	err := decode(req.Body, &in)
	return in, claimOf(req, in.Request), err
}

// claimOf is who an applicant's request says it comes from.
func claimOf(req handler.Request, in application.Request) channelauth.Claim {
	return channelauth.Claim{Channel: in.Channel, KioskID: in.KioskID, Operator: req.Header.Get(headerOperator)}
}

// POST /applications → 201 {application, masked}; with the photo (multipart), the
// application is in photo_pending_audit.
func apply(svc *application.Service) func(handler.Request, applicationInput, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, in applicationInput, a channelauth.Actor) (handler.Response, error) {
		in.Channel, in.KioskID = a.Channel, a.KioskID
		var v application.View
		var err error
		if in.photo != nil {
			v, err = svc.ApplyWithPhoto(req.Context(), in.Request, *in.photo, actor(req, a.ID, ""))
		} else {
			v, err = svc.Apply(req.Context(), in.Request, actor(req, a.ID, ""))
		}
		if err != nil {
			return handler.Response{}, err
		}
		return created(v)
	}
}

// POST /replacements {…application fields, kind, reason?, cardNo?, reusePhoto?} → 201
// {application, masked}; then photo, audit, production and activation as for any
// application. 409 with currentState when the card may not be replaced this way.
func applyReplacement(svc *application.Service) func(handler.Request, application.ReplacementRequest, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, in application.ReplacementRequest, a channelauth.Actor) (handler.Response, error) {
		in.Channel, in.KioskID = a.Channel, a.KioskID
		v, err := svc.ApplyReplacement(req.Context(), in, actor(req, a.ID, ""))
		if err != nil {
			return handler.Response{}, err
		}
		return created(v)
	}
}

func created(v application.View) (handler.Response, error) {
	res, err := runtime.JSON(http.StatusCreated, v)
	if err == nil {
		res.Header.Set("Location", "/applications/"+v.ApplicationID)
	}
	return res, err
}

// GET /applications/{id} → the application with history, masked.
func get(svc *application.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		v, err := svc.Get(req.Context(), runtime.Param(req, "id"), true)
		if err != nil {
			return handler.Response{}, notFound(err)
		}
		return runtime.JSON(http.StatusOK, v)
	}
}

// readPhoto: the body is the JPEG; a kiosk names itself in X-Kiosk-Id or ?kioskId=.
func readPhoto(req handler.Request) (struct{}, channelauth.Claim, error) {
	kiosk := req.Header.Get(headerKiosk)
	if kiosk == "" {
		if q, err := url.ParseQuery(req.QueryString); err == nil {
			kiosk = q.Get("kioskId")
		}
	}
	return struct{}{}, channelauth.Claim{KioskID: kiosk, Operator: req.Header.Get(headerOperator)}, nil
}

// PUT /applications/{id}/photo, body = JPEG bytes.
func uploadPhoto(svc *application.Service) func(handler.Request, struct{}, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, _ struct{}, a channelauth.Actor) (handler.Response, error) {
		v, err := svc.UploadPhoto(req.Context(), runtime.Param(req, "id"), application.PhotoUpload{
			ContentType: req.Header.Get("Content-Type"), Body: req.Body, KioskID: a.KioskID,
			Actor: actor(req, a.ID, a.Channel),
		})
		if err != nil {
			return handler.Response{}, notFound(err)
		}
		return runtime.JSON(http.StatusOK, v)
	}
}

type photoAudit struct {
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// readPhotoAudit: photos are audited by staff at the outlet (or another signed channel
// named in X-Channel), never anonymously on a resident's channel.
func readPhotoAudit(req handler.Request) (photoAudit, channelauth.Claim, error) {
	var in photoAudit
	if err := decode(req.Body, &in); err != nil {
		return in, channelauth.Claim{}, err
	}
	ch := req.Header.Get(headerChannel)
	if ch == "" {
		ch = "outlet"
	}
	if !channelauth.RequiresSignature(ch) {
		return in, channelauth.Claim{}, problem.Invalid("the photo audit was not recorded",
			problem.Field(headerChannel, "photo audits are made on the outlet channel (or bank, kiosk), by a signed caller"))
	}
	return in, channelauth.Claim{Channel: ch, Operator: req.Header.Get(headerOperator)}, nil
}

// POST /applications/{id}/photo-audit {result, reason}; the signed outlet is the auditor.
func auditPhoto(svc *application.Service) func(handler.Request, photoAudit, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, in photoAudit, a channelauth.Actor) (handler.Response, error) {
		v, err := svc.AuditPhoto(req.Context(), runtime.Param(req, "id"), events.AuditResult(in.Result), in.Reason,
			actor(req, a.ID, a.Channel))
		if err != nil {
			return handler.Response{}, notFound(err)
		}
		return runtime.JSON(http.StatusOK, v)
	}
}

// readHolderAction: the holder acts (activates, withdraws) online (no channel named) or at
// a counter (X-Channel).
func readHolderAction(req handler.Request) (struct{}, channelauth.Claim, error) {
	return struct{}{}, channelauth.Claim{Channel: req.Header.Get(headerChannel), Operator: req.Header.Get(headerOperator)}, nil
}

// POST /applications/{id}/activate and /withdraw: one of the holder's actions on an
// application → the application.
func holderAction(do func(context.Context, string, application.Actor) (application.View, error)) func(handler.Request, struct{}, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, _ struct{}, a channelauth.Actor) (handler.Response, error) {
		v, err := do(req.Context(), runtime.Param(req, "id"), actor(req, a.ID, a.Channel))
		if err != nil {
			return handler.Response{}, notFound(err)
		}
		return runtime.JSON(http.StatusOK, v)
	}
}

// POST /progress {idNumber} (signed) → 200 {applications: [...]}, masked, newest first.
// The answer has the same shape whether or not the number is registered (an empty list),
// so the route cannot tell registered numbers from others.
func progress(svc *application.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct {
			IDNumber string `json:"idNumber"`
		}
		if err := decode(req.Body, &in); err != nil {
			return handler.Response{}, err
		}
		if in.IDNumber == "" {
			return handler.Response{}, problem.Invalid("idNumber is required", problem.Field("idNumber", "is required"))
		}
		vs, err := svc.Progress(req.Context(), in.IDNumber)
		if errors.Is(err, application.ErrNotFound) {
			vs, err = []application.View{}, nil
		}
		if err != nil {
			return handler.Response{}, err
		}
		res, err := runtime.JSON(http.StatusOK, map[string]any{"applications": vs})
		if err == nil {
			res.Header.Set("Cache-Control", "no-store")
		}
		return res, err
	}
}

// GET /progress?idNumber=… put ID numbers into URLs and access logs: 410, pointing to POST.
func progressMoved(handler.Request) (handler.Response, error) {
	return handler.Response{}, problem.New(http.StatusGone, "moved-to-post", "Use POST /progress",
		"progress by ID number is POST /progress with {\"idNumber\": …} in a signed call; ID numbers never go in URLs").
		With("method", "POST")
}

// POST /production/advance[?limit=N] (admin): the simulated producer and carrier move
// applications one step each.
func advance(svc *application.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		limit := 100
		if q, err := url.ParseQuery(req.QueryString); err == nil && q.Get("limit") != "" {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil || n < 1 || n > 1000 {
				return handler.Response{}, problem.Invalid("limit must be 1 to 1000", problem.Field("limit", "must be 1 to 1000"))
			}
			limit = n
		}
		op := req.Header.Get(headerOperator)
		if op == "" {
			op = "admin"
		}
		out, err := svc.Advance(req.Context(), limit, actor(req, op, "admin"))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, out)
	}
}

// POST /batches (body: an xlsx workbook) → every valid row applied (channel employer); the
// answer is the JSON summary with each failed row's reasons, or — when the caller accepts
// xlsx — the result workbook of the failed rows with a reason column, to fix and upload
// again.
func applyBatch(svc *application.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if len(req.Body) == 0 {
			return handler.Response{}, problem.Invalid("upload the xlsx workbook as the body", problem.Field("file", "empty body"))
		}
		res, err := svc.ApplyBatch(req.Context(), req.Body, actor(req, req.Header.Get(headerOperator), ""))
		if err != nil {
			return handler.Response{}, err
		}
		if strings.Contains(req.Header.Get("Accept"), application.XLSXType) {
			h := http.Header{}
			h.Set("Content-Type", application.XLSXType)
			h.Set("Content-Disposition", `attachment; filename="`+res.BatchID+`-result.xlsx"`)
			h.Set("X-Batch-Accepted", strconv.Itoa(res.Accepted))
			h.Set("X-Batch-Failed", strconv.Itoa(res.Failed))
			return handler.Response{StatusCode: http.StatusOK, Body: res.Result, Header: h}, nil
		}
		if res.Failures == nil {
			res.Failures = []application.RowFailure{}
		}
		return runtime.JSON(http.StatusOK, res)
	}
}
