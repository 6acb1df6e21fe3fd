package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/face"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of face-match: 1:1 person-vs-card-photo and 1:N search of the
// card photo library (000 §4, 004 §3(25)). The rules live in shared/face. Every route is
// a signed call: verification from a kiosk or an outlet counter, the library's upkeep
// and the 1:N search from an administrator (channelauth.KindAdmin), which the audit
// chain records with its reason.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, err := face.Open(d)
	var missing error // an instance without the model files answers 503 (events: retried)
	if errors.Is(err, face.ErrNotInstalled) {
		missing = problem.Unavailable("face model files", time.Minute, err)
		if d.Log != nil {
			d.Log.Error("face-match has no model: answering 503", "err", err)
		}
	} else if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	counter := signedBy(v, missing, channelauth.KindKiosk, channelauth.KindOutlet)
	staff := signedBy(v, missing, channelauth.KindOutlet, channelauth.KindAdmin)
	admin := signedBy(v, missing, channelauth.KindAdmin)
	r := runtime.NewRouter("face-match")

	r.Post("/verify", counter(verify(svc)))
	r.Post("/identify", admin(identify(svc)))
	r.Post("/enrolments", staff(enrol(svc)))
	r.Route(http.MethodDelete, "/enrolments/{person}", admin(remove(svc)))
	r.Get("/prechecks/{application}", staff(precheck(svc)))
	r.Post("/index/snapshot", admin(snapshot(svc)))

	// Card photos: a machine pre-check when submitted, enrolment when the audit approves.
	r.OnEvent(events.PhotoSubmitted, d.Postgres, orMissing(missing, onSubmitted(svc)))
	r.OnEvent(events.PhotoAudited, d.Postgres, orMissing(missing, onAudited(svc)))
	return r, nil
}

func orMissing(missing error, fn runtime.EventFunc) runtime.EventFunc {
	if missing == nil {
		return fn
	}
	return func(context.Context, pgx.Tx, event.Event) error { return missing }
}

// signedBy admits only signed calls (callsign.Require: 401 unsigned or bad, 403 off the
// caller's routes) from callers of the given kinds (403 otherwise).
// missing, when set, is the answer after those checks.
func signedBy(v *callsign.Verifier, missing error, kinds ...string) func(runtime.HandlerFunc) runtime.HandlerFunc {
	return func(fn runtime.HandlerFunc) runtime.HandlerFunc {
		return callsign.Require(v, func(req handler.Request) (handler.Response, error) {
			id, _ := callsign.Caller(req)
			if !slices.Contains(kinds, id.Kind) {
				return handler.Response{}, channelauth.Mismatch("a " + id.Kind + " caller may not use this face-match operation")
			}
			if missing != nil {
				return handler.Response{}, missing
			}
			return fn(req)
		})
	}
}

// photoBody is the JSON of a request carrying a photo (base64 JPEG or PNG).
type photoBody struct {
	Person string `json:"person"` // person id or card number
	Photo  string `json:"photo"`
	Reason string `json:"reason"`
	TopK   int    `json:"topK"`
}

func readPhoto(req handler.Request, needPerson bool) (photoBody, []byte, error) {
	var in photoBody
	if err := json.Unmarshal(req.Body, &in); err != nil {
		return in, nil, problem.Invalid("the body must be JSON", problem.Field("body", err.Error()))
	}
	var bad []problem.InvalidParam
	if needPerson && (in.Person == "" || len(in.Person) > 64) {
		bad = append(bad, problem.Field("person", "a person id or card number is required"))
	}
	photo, err := base64.StdEncoding.DecodeString(in.Photo)
	if err != nil || len(photo) == 0 {
		bad = append(bad, problem.Field("photo", "a base64 JPEG or PNG image is required"))
	} else if len(photo) > 2<<20 {
		bad = append(bad, problem.Field("photo", "at most 2 MB"))
	}
	if len(bad) > 0 {
		return in, nil, problem.Invalid("the request has invalid fields", bad...)
	}
	return in, photo, nil
}

// POST /verify {person, photo} → {match, distance, threshold, …}
func verify(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		in, photo, err := readPhoto(req, true)
		if err != nil {
			return handler.Response{}, err
		}
		v, err := svc.Verify(req.Context(), in.Person, photo)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, v)
	}
}

// POST /identify {photo, reason, topK} → {candidates: [{personId, name, idNumber, distance}]}
func identify(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		in, photo, err := readPhoto(req, false)
		if err != nil {
			return handler.Response{}, err
		}
		id, _ := callsign.Caller(req)
		c, err := svc.Identify(req.Context(), photo, face.Search{Actor: id.AppID, Channel: "admin", Reason: in.Reason,
			RequestID: runtime.RequestID(req), TopK: in.TopK})
		if err != nil {
			return handler.Response{}, err
		}
		if c == nil {
			c = []face.Candidate{}
		}
		return runtime.JSON(http.StatusOK, map[string]any{"candidates": c, "maxDistance": svc.Match.IdentifyMaxDistance})
	}
}

// POST /enrolments {person, photo}: enrol (or replace) a person's card photo directly.
func enrol(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		in, photo, err := readPhoto(req, true)
		if err != nil {
			return handler.Response{}, err
		}
		id, _ := callsign.Caller(req)
		q, err := svc.Enrol(req.Context(), in.Person, photo, "request:"+id.AppID+":"+id.Nonce)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"person": in.Person, "enrolled": true, "quality": q})
	}
}

// DELETE /enrolments/{person}
func remove(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		ok, err := svc.Remove(req.Context(), runtime.Param(req, "person"))
		if err != nil {
			return handler.Response{}, err
		}
		if !ok {
			return handler.Response{}, problem.NotFound("this person is not enrolled")
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

// GET /prechecks/{application}: the machine pre-check the photo audit sees.
func precheck(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		r, err := svc.PreCheckOf(req.Context(), runtime.Param(req, "application"))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, r)
	}
}

// POST /index/snapshot: store the 1:N index for instances to start from.
func snapshot(svc *face.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		seq, n, err := svc.Lib.WriteSnapshot(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"seq": seq, "enrolled": n})
	}
}

func onSubmitted(svc *face.Service) runtime.EventFunc {
	return func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		d, err := events.Decode[events.PhotoSubmittedData](ev)
		if err != nil {
			return runtime.EventProblem(err)
		}
		return svc.PreCheck(ctx, tx, ev.ID(), d)
	}
}

func onAudited(svc *face.Service) runtime.EventFunc {
	return func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		d, err := events.Decode[events.PhotoAuditedData](ev)
		if err != nil {
			return runtime.EventProblem(err)
		}
		return svc.EnrolApproved(ctx, tx, ev.ID(), d)
	}
}
