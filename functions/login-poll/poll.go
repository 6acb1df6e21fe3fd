package main

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// pollAnswer is the body of a 200 poll answer.
type pollAnswer struct {
	State    string  `json:"state"`             // waiting | scanned | confirmed | registration_required
	Interval int     `json:"interval"`          // seconds to wait before the next poll
	Token    string  `json:"token,omitempty"`   // with confirmed, exactly once
	Holder   *holder `json:"holder,omitempty"`  // masked, with confirmed
	Message  string  `json:"message,omitempty"` // for the page
}

type holder struct {
	Name     string `json:"name"`
	IDNumber string `json:"idNumber"`
}

// poll answers the page. Shapes (documented in docs/login.md):
//
//	200 {state: waiting|scanned, interval}               keep polling at interval
//	200 {state: confirmed, token, holder}                once; the session is spent
//	200 {state: registration_required}                   the holder must register first
//	429 problem {error: slow_down, interval} Retry-After  polled too early; interval grew
//	410 problem {state: expired|cancelled|consumed}       stop polling; offer 刷新
//	404 problem                                           unknown session, or no/wrong
//	                                                      X-Poll-Secret (the same answer)
//
// slow_down is RFC 8628's error code carried in a 429 problem: HTTP clients and proxies
// understand 429 + Retry-After, and the page reads the new interval from the body.
func poll(s *login.Sessions) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		id := runtime.Param(req, "session")
		r, err := s.Poll(req.Context(), id, req.Header.Get(login.PollSecretHeader), time.Now())
		if errors.Is(err, login.ErrUnknown) {
			return handler.Response{}, problem.NotFound("no such login session; request a new QR code")
		}
		if err != nil {
			return handler.Response{}, err // Redis down → 503 by the runtime; no token minted
		}
		secs := int(math.Ceil(r.Interval.Seconds()))
		switch {
		case r.SlowDown:
			p := problem.TooMany("polling faster than the interval", r.Interval)
			return handler.Response{}, p.With("error", "slow_down").With("interval", secs)
		case r.RegistrationRequired:
			return runtime.JSON(http.StatusOK, pollAnswer{State: "registration_required", Interval: secs,
				Message: "您尚未登记，请先办理社保卡登记"})
		case r.State == login.Confirmed:
			res, err := runtime.JSON(http.StatusOK, pollAnswer{State: "confirmed", Interval: secs, Token: r.Token,
				Holder: &holder{Name: r.MaskedName, IDNumber: r.MaskedIDNumber}})
			res.Header.Set("Cache-Control", "no-store")
			return res, err
		case r.State.Terminal():
			p := problem.New(http.StatusGone, "login-qr-ended", "二维码已失效", "this login QR can no longer be used; request a new one")
			return handler.Response{}, p.With("state", string(r.State))
		default:
			return waitingAnswer(r.State, secs), nil
		}
	}
}

func bearer(req handler.Request) string {
	h := req.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

func whoami(s *login.Sessions) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		person, err := s.Holder(req.Context(), bearer(req))
		if errors.Is(err, login.ErrUnknown) {
			return handler.Response{}, problem.New(http.StatusUnauthorized, "unauthenticated", "Not logged in", "the session token is missing, expired or revoked")
		}
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]string{"personId": person})
	}
}

func logout(s *login.Sessions) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if err := s.Revoke(req.Context(), bearer(req)); err != nil {
			return handler.Response{}, err
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

// waitingAnswer is the answer to nearly every poll, written without reflection: it is the
// whole body of the hottest route (make bench).
func waitingAnswer(state login.State, secs int) handler.Response {
	b := make([]byte, 0, 40)
	b = append(b, `{"state":"`...)
	b = append(b, state...) // one of our state names: nothing to escape
	b = append(b, `","interval":`...)
	b = strconv.AppendInt(b, int64(secs), 10)
	b = append(b, '}')
	h := http.Header{"Content-Type": {"application/json"}}
	return handler.Response{StatusCode: http.StatusOK, Body: b, Header: h}
}
