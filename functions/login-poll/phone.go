package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// sendPhoneCode: POST /phone/code {newPhone}, with the session token.
func sendPhoneCode(p *login.PhoneChange) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct {
			NewPhone string `json:"newPhone"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil || in.NewPhone == "" {
			return handler.Response{}, problem.Invalid("want {\"newPhone\": …}", problem.Field("newPhone", "required"))
		}
		if err := p.SendCode(req.Context(), bearer(req), in.NewPhone); err != nil {
			return handler.Response{}, phoneProblem(err)
		}
		return handler.Response{StatusCode: http.StatusAccepted}, nil
	}
}

// changePhone: POST /phone {idNumber, oldPhone, newPhone, code}, with the session token.
func changePhone(p *login.PhoneChange) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct {
			IDNumber string `json:"idNumber"`
			OldPhone string `json:"oldPhone"`
			NewPhone string `json:"newPhone"`
			Code     string `json:"code"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return handler.Response{}, problem.Invalid("the body is not JSON")
		}
		var bad []problem.InvalidParam
		for name, v := range map[string]string{"idNumber": in.IDNumber, "oldPhone": in.OldPhone, "newPhone": in.NewPhone, "code": in.Code} {
			if v == "" {
				bad = append(bad, problem.Field(name, "required"))
			}
		}
		if len(bad) > 0 {
			return handler.Response{}, problem.Invalid("missing fields", bad...)
		}
		err := p.Change(req.Context(), bearer(req), in.IDNumber, in.OldPhone, in.NewPhone, in.Code, runtime.RequestID(req))
		if err != nil {
			return handler.Response{}, phoneProblem(err)
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

func phoneProblem(err error) error {
	switch {
	case errors.Is(err, login.ErrNotLoggedIn):
		return problem.New(http.StatusUnauthorized, "unauthenticated", "Not logged in", "log in by scanning the QR code first")
	case errors.Is(err, login.ErrPhoneInvalid):
		return problem.Invalid("not a mainland mobile number", problem.Field("newPhone", "want 11 digits starting with 1"))
	case errors.Is(err, login.ErrTooSoon):
		return problem.TooMany("a code was sent less than a minute ago", time.Minute)
	case errors.Is(err, login.ErrCodeInvalid):
		return problem.Invalid("the verification code is wrong or has expired", problem.Field("code", "wrong or expired"))
	case errors.Is(err, login.ErrIdentity):
		// One answer for both, so the form cannot be used to probe which one is on record.
		return problem.Invalid("the ID number or the old phone number does not match our records",
			problem.Field("idNumber", "does not match"), problem.Field("oldPhone", "does not match"))
	}
	return err
}
