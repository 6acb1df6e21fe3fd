package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
	"github.com/sscard/platform/shared/sms"
)

// sendMessage: POST /messages {messageId, template, params, recipientRef, purpose} — the
// HTTP twin of the SMSRequested event, same contract. 202 with the records (masked).
func sendMessage(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in events.SMSRequestedData
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		var recs []sms.Record
		err := pgx.BeginFunc(req.Context(), svc.Pool, func(tx pgx.Tx) error {
			var err error
			recs, err = svc.Enqueue(req.Context(), tx, sms.Request{MessageID: in.MessageID, Template: in.Template,
				Params: in.Params, RecipientRef: in.RecipientRef, Purpose: in.Purpose})
			return err
		})
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusAccepted, map[string]any{"messageId": in.MessageID, "records": recs})
	}
}

// messagesByID: GET /messages?messageId=… — every record of one message id.
func messagesByID(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		q, _ := url.ParseQuery(req.QueryString)
		id := q.Get("messageId")
		if id == "" {
			return handler.Response{}, problem.Invalid("which message?", problem.Field("messageId", "required"))
		}
		recs, err := svc.ByMessage(req.Context(), id)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"messageId": id, "records": recs})
	}
}

// getMessage: GET /messages/{id} — one record.
func getMessage(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		rec, err := svc.Get(req.Context(), runtime.Param(req, "id"))
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, rec)
	}
}

// issueCode: POST /codes {phone, purpose, client?} — client defaults to the signed caller.
func issueCode(codes *sms.Codes) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in sms.CodeRequest
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		if caller, ok := callsign.Caller(req); ok {
			in.Client = caller.AppID + "/" + in.Client
		}
		out, err := codes.Issue(req.Context(), in)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusAccepted, out)
	}
}

// verifyCode: POST /codes/verify {phone, purpose, code} — 200 {valid: true}, or 422 naming
// why (wrong, expired or used, locked after too many tries).
func verifyCode(codes *sms.Codes) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct{ Phone, Purpose, Code string }
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		err := codes.Verify(req.Context(), in.Phone, in.Purpose, in.Code)
		var kind string
		switch {
		case err == nil:
			return runtime.JSON(http.StatusOK, map[string]bool{"valid": true})
		case errors.Is(err, sms.ErrCodeWrong):
			kind = "code-wrong"
		case errors.Is(err, sms.ErrCodeExpired):
			kind = "code-expired"
		case errors.Is(err, sms.ErrCodeLocked):
			kind = "code-locked"
		default:
			return handler.Response{}, err
		}
		return handler.Response{}, problem.New(http.StatusUnprocessableEntity, kind, "Verification code not accepted", err.Error()).
			With("valid", false)
	}
}

func listGroups(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		gs, err := svc.Groups(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"groups": gs})
	}
}

// putGroup: PUT /groups/{group} {description}.
func putGroup(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct{ Description string }
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		if err := svc.PutGroup(req.Context(), runtime.Param(req, "group"), in.Description); err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]string{"name": runtime.Param(req, "group"), "description": in.Description})
	}
}

// putMember: PUT /groups/{group}/members/{member} {phone} — the answer masks the number.
func putMember(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct{ Phone string }
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		m, err := svc.PutMember(req.Context(), runtime.Param(req, "group"), runtime.Param(req, "member"), in.Phone)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, m)
	}
}

func deleteMember(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if err := svc.DeleteMember(req.Context(), runtime.Param(req, "group"), runtime.Param(req, "member")); err != nil {
			return handler.Response{}, err
		}
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}
}

func listTemplates(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		ts, err := svc.Templates(req.Context())
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"templates": ts})
	}
}

// publishTemplate: POST /templates/{code} {body} — a new active version.
func publishTemplate(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		var in struct{ Body string }
		if err := decode(req, &in); err != nil {
			return handler.Response{}, err
		}
		by := "unknown"
		if c, ok := callsign.Caller(req); ok {
			by = c.AppID
		}
		t, err := svc.PublishTemplate(req.Context(), runtime.Param(req, "code"), in.Body, by)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusCreated, t)
	}
}

// dailyReport: GET /reports/daily?date=YYYY-MM-DD (China day; default today).
func dailyReport(svc *sms.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		q, _ := url.ParseQuery(req.QueryString)
		day := q.Get("date")
		if day == "" {
			day = time.Now().In(sms.ChinaTime).Format(time.DateOnly)
		}
		rep, err := svc.DailyReport(req.Context(), day)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, rep)
	}
}

// decode reads a required JSON body strictly (runtime.DecodeJSON).
func decode(req handler.Request, v any) error {
	if len(bytes.TrimSpace(req.Body)) == 0 {
		return problem.Invalid("a JSON body is required")
	}
	return runtime.DecodeJSON(req, v)
}
