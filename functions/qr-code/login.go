package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"
	"github.com/skip2/go-qrcode"

	"github.com/sscard/platform/shared/ecard"
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// created is the answer to a new QR. Durations are whole seconds, as RFC 8628's
// expires_in and interval.
type created struct {
	SessionID string `json:"sessionId"`
	// PollSecret is for the page's polls (header X-Poll-Secret); the QR does not carry it.
	PollSecret string    `json:"pollSecret"`
	QRContent  string    `json:"qrContent"`
	QRImage    string    `json:"qrImage"` // data: URL of a PNG
	ExpiresAt  time.Time `json:"expiresAt"`
	ExpiresIn  int       `json:"expiresIn"`
	Interval   int       `json:"interval"`
}

func start(flow *login.Flow) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		s, err := flow.Start(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		return answerCreated(s)
	}
}

func refresh(flow *login.Flow) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		old := runtime.Param(req, "session")
		if !login.ValidID(old) {
			return handler.Response{}, problem.Invalid("not a login session id", problem.Field("session", "malformed"))
		}
		s, err := flow.Refresh(req.Context(), old)
		if err != nil {
			return handler.Response{}, err
		}
		return answerCreated(s)
	}
}

func answerCreated(s login.Started) (handler.Response, error) {
	png, err := qrcode.Encode(s.QRContent, qrcode.Medium, 256)
	if err != nil {
		return handler.Response{}, problem.Internal(err)
	}
	res, err := runtime.JSON(http.StatusCreated, created{
		SessionID: s.ID, PollSecret: s.PollSecret, QRContent: s.QRContent, QRImage: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		ExpiresAt: s.ExpiresAt, ExpiresIn: int(math.Round(time.Until(s.ExpiresAt).Seconds())),
		Interval: int(math.Ceil(s.Interval.Seconds())),
	})
	res.Header.Set("Cache-Control", "no-store")
	return res, err
}

// notify takes the e-card platform's notice. A notice that does not verify gets the same
// 401 whatever was wrong with it.
func notify(flow *login.Flow) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var a ecard.Assertion
		if err := json.Unmarshal(req.Body, &a); err != nil || !login.ValidID(a.SessionID) {
			return handler.Response{}, problem.Invalid("want a signed e-card assertion", problem.Field("sessionId", "missing or malformed"))
		}
		if err := flow.Notify(req.Context(), a); err != nil {
			return handler.Response{}, notifyProblem(err)
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

// act is the local authority's phone: scan, confirm or cancel a session as a test person.
// Its notice goes through the same verification as the platform's.
func act(flow *login.Flow, local *ecard.Local) runtime.HandlerFunc {
	type request struct {
		SessionID string       `json:"sessionId"`
		Action    string       `json:"action"` // scanned | confirmed | cancelled
		Holder    ecard.Holder `json:"holder"`
	}
	return func(req handler.Request) (handler.Response, error) {
		var in request
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return handler.Response{}, problem.Invalid("body is not JSON")
		}
		var bad []problem.InvalidParam
		if !login.ValidID(in.SessionID) {
			bad = append(bad, problem.Field("sessionId", "missing or malformed"))
		}
		if in.Action != ecard.StateScanned && in.Action != ecard.StateConfirmed && in.Action != ecard.StateCancelled {
			bad = append(bad, problem.Field("action", "one of scanned, confirmed, cancelled"))
		}
		if in.Action != ecard.StateCancelled && (in.Holder.IDNumber == "" || in.Holder.Name == "") {
			bad = append(bad, problem.Field("holder", "idNumber and name are required"))
		}
		if len(bad) > 0 {
			return handler.Response{}, problem.Invalid("cannot act on the QR", bad...)
		}
		a, err := local.Act(req.Context(), in.SessionID, in.Action, in.Holder)
		if errors.Is(err, ecard.ErrNotFound) {
			return handler.Response{}, problem.NotFound("the local e-card authority issued no such QR")
		}
		if err != nil {
			return handler.Response{}, err
		}
		if err := flow.Notify(req.Context(), a); err != nil {
			return handler.Response{}, notifyProblem(err)
		}
		return runtime.JSON(http.StatusOK, map[string]string{"sessionId": in.SessionID, "state": in.Action})
	}
}

func notifyProblem(err error) error {
	switch {
	case errors.Is(err, ecard.ErrSignature):
		return problem.New(http.StatusUnauthorized, "unverified", "Unverified notice", "the notice could not be verified").Because(err)
	case errors.Is(err, login.ErrUnknown):
		return problem.NotFound("no such login session")
	case errors.Is(err, login.ErrIllegal):
		return problem.Conflict("the login session cannot take this step").Because(err)
	}
	return err
}
