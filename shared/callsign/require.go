package callsign

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

type callerKey struct{}

// Caller returns the authenticated caller of a request that passed Require.
func Caller(req handler.Request) (Identity, bool) {
	ctx := req.Context()
	if ctx == nil {
		return Identity{}, false
	}
	return CallerFrom(ctx)
}

// CallerFrom is Caller for a context.
func CallerFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(*Identity)
	if !ok {
		return Identity{}, false
	}
	return *id, true
}

// Forbidden is the answer when an authenticated caller's routes do not include the route.
func Forbidden() *problem.Problem {
	return problem.New(http.StatusForbidden, "forbidden", "Forbidden", "this caller is not allowed to use this route")
}

// Require wraps fn so it only runs for a request that passes the checks of v and whose
// caller may use the route. fn sees the plaintext body (decrypted when the request was
// enveloped, with the inner Content-Type) and the caller through Caller(req). Every
// answer to an authenticated request — fn's response or its problem — is signed, and
// enveloped when the request was. Failed checks answer an unsigned uniform 401, or 503
// when Redis or the registry is down.
func Require(v *Verifier, fn runtime.HandlerFunc) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		vr, err := v.verify(&req)
		if err != nil {
			return handler.Response{}, err
		}
		inner := req
		inner.Body = vr.body
		inner.Header = req.Header.Clone()
		if vr.session != nil {
			if vr.innerType != "" {
				inner.Header.Set("Content-Type", vr.innerType)
			} else {
				inner.Header.Del("Content-Type")
			}
		}
		inner.WithContext(context.WithValue(reqContext(&req), callerKey{}, &vr.id))

		var res handler.Response
		if !vr.entry.App.Allows(req.Method, v.cfg.Function, runtime.Path(req)) {
			v.log.Info("callsign: route not allowed for caller", "request_id", runtime.RequestID(req), "app_id", vr.id.AppID,
				"method", req.Method)
			err = Forbidden()
		} else {
			res, err = fn(inner)
		}
		if err != nil {
			res = v.problemResponse(req, err)
		}
		out, err := v.signResponse(&req, vr, res)
		if err != nil {
			return handler.Response{}, problem.Internal(err)
		}
		return out, nil
	}
}

func (v *Verifier) problemResponse(req handler.Request, err error) handler.Response {
	p, ok := problem.As(err)
	if !ok && v.cfg.MapError != nil {
		p = v.cfg.MapError(err)
	}
	if p == nil {
		p = problem.Internal(err)
	}
	p.RequestID = runtime.RequestID(req)
	p.Instance = runtime.Path(req)
	cause := p.Detail
	if c := p.Unwrap(); c != nil {
		cause = c.Error()
	}
	attrs := []any{"request_id", p.RequestID, "status", p.Status, "error", p.Title + ": " + cause}
	if p.Status >= 500 {
		v.log.Error("callsign: signed problem", attrs...)
	} else {
		v.log.Info("callsign: signed problem", attrs...)
	}
	return handler.Response{StatusCode: p.Status, Header: p.Headers(), Body: p.Body()}
}

// noBody: answers that carry no body on the wire, so none is signed or enveloped.
func noBody(method string, status int) bool {
	return method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200
}

func (v *Verifier) signResponse(req *handler.Request, vr *verified, res handler.Response) (handler.Response, error) {
	status := res.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{}
	for k, vals := range res.Header {
		h[k] = append([]string(nil), vals...)
	}
	body := res.Body
	if noBody(req.Method, status) {
		body = nil
	}
	ct := h.Get("Content-Type")
	if ct == "" && len(body) > 0 {
		ct = http.DetectContentType(body)
		h.Set("Content-Type", ct)
	}
	rf := ResponseFields{Status: status, Function: v.cfg.Function, AppID: vr.id.AppID, RequestNonce: vr.fields.Nonce,
		KeyID: v.signKeyID, Timestamp: strconv.FormatInt(v.cfg.Now().Unix(), 10), ContentType: ct}
	if vr.session != nil && !noBody(req.Method, status) {
		aad, err := ResponseAAD(rf, ct)
		if err != nil {
			return handler.Response{}, err
		}
		if body, err = sealEnvelope(vr.session, nil, body, aad, ct); err != nil {
			return handler.Response{}, err
		}
		rf.ContentType, rf.Envelope = EnvelopeType, ResponseEnvelope
		h.Set("Content-Type", EnvelopeType)
		h.Set(HeaderEnvelope, ResponseEnvelope)
	}
	rf.BodySM3 = BodySM3(body)
	canon, err := CanonicalResponse(rf)
	if err != nil {
		return handler.Response{}, errors.New("callsign: response content type cannot be signed")
	}
	sig, err := gm.Sign(v.cfg.SignKey, []byte(canon))
	if err != nil {
		return handler.Response{}, err
	}
	h.Set(HeaderKeyID, v.signKeyID)
	h.Set(HeaderTimestamp, rf.Timestamp)
	h.Set(HeaderRequestNonce, rf.RequestNonce)
	h.Set(HeaderBodySM3, rf.BodySM3)
	h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	return handler.Response{StatusCode: status, Header: h, Body: body}, nil
}
