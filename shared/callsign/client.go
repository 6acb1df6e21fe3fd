package callsign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sscard/platform/shared/gm"
)

// ErrNotAuthentic: a response that is not signed by a known server key, not bound to the
// request, or (for an enveloped request) not enveloped under its session key. Also an
// unsigned 2xx: only a signed answer may be taken as success.
var ErrNotAuthentic = errors.New("callsign: response is not authentic")

// Client calls function endpoints with signed (and optionally enveloped) requests and
// accepts only answers the server signed for that request.
type Client struct {
	// HTTP sends the requests (http.DefaultClient when nil). Redirects are never followed.
	HTTP *http.Client
	// BaseURL is the function's URL: the gateway's /function/<name> or a Knative service URL.
	BaseURL string
	// Function is the function's name, as the server signs it.
	Function string
	AppID    string
	KeyID    string
	Key      crypto.Signer // the caller's SM2 private key (or an HSM/UKey signer)
	// ServerSignKeys are the server keys whose signatures are accepted, by gm.KeyID (old
	// and new during a rotation).
	ServerSignKeys map[string]*ecdsa.PublicKey
	// ServerEncKey is the server's envelope key; Envelope envelopes every request body.
	ServerEncKey *ecdsa.PublicKey
	Envelope     bool
	// MaxResponseBytes caps a response body (default 16 MiB).
	MaxResponseBytes int64
	Now              func() time.Time
}

// Request is one call. Path is below the function ("/cards/C1/loss"), decoded.
type Request struct {
	Method      string
	Path        string
	Query       url.Values
	Body        []byte
	ContentType string
	// Header adds unsigned headers (X-Request-Id, Accept-Language…).
	Header http.Header
	// Plain sends this request without an envelope even when the client envelopes.
	Plain bool
}

// Response is an answer. Body is the plaintext; Signed is false only for the unsigned
// problems the server answers before authentication (401, 503, 413 …).
type Response struct {
	StatusCode  int
	Header      http.Header
	ContentType string
	Body        []byte
	Signed      bool
}

// Do sends r and authenticates the answer.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	hr, p, err := c.NewHTTPRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = 16 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, errors.New("callsign: response too large")
	}
	return p.Authenticate(resp.StatusCode, resp.Header, raw)
}

// Pending is a request that was built and awaits its answer; it holds the nonce and the
// session key the answer must be bound to.
type Pending struct {
	c       *Client
	f       RequestFields
	session []byte
}

// NewHTTPRequest builds the signed (and enveloped) HTTP request for r without sending
// it; Pending.Authenticate then checks the answer. Do is both steps.
func (c *Client) NewHTTPRequest(ctx context.Context, r Request) (*http.Request, *Pending, error) {
	if c.Key == nil || !isFunction(c.Function) {
		return nil, nil, errors.New("callsign: client needs Key and Function")
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, nil, err
	}
	f := RequestFields{Method: r.Method, Function: c.Function, Path: r.Path, RawQuery: r.Query.Encode(),
		AppID: c.AppID, KeyID: c.KeyID, Timestamp: strconv.FormatInt(now().Unix(), 10), Nonce: hex.EncodeToString(nb[:])}
	if f.Method == "" {
		f.Method = http.MethodGet
	}
	body, contentType := r.Body, r.ContentType
	p := &Pending{c: c}
	if c.Envelope && !r.Plain {
		if c.ServerEncKey == nil {
			return nil, nil, errors.New("callsign: enveloping needs ServerEncKey")
		}
		session, wrapped, err := newSessionKey(c.ServerEncKey)
		if err != nil {
			return nil, nil, err
		}
		p.session = session
		f.Envelope = gm.KeyID(c.ServerEncKey)
		aad, err := RequestAAD(f, contentType)
		if err != nil {
			return nil, nil, err
		}
		if body, err = sealEnvelope(session, wrapped, body, aad, contentType); err != nil {
			return nil, nil, err
		}
		contentType = EnvelopeType
	}
	f.BodySM3 = BodySM3(body)
	canon, err := CanonicalRequest(f)
	if err != nil {
		return nil, nil, err
	}
	sig, err := gm.Sign(c.Key, []byte(canon))
	if err != nil {
		return nil, nil, err
	}
	p.f = f

	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("callsign: base URL: %w", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + r.Path
	u.RawPath = ""
	u.RawQuery = f.RawQuery
	hr, err := http.NewRequestWithContext(ctx, f.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range r.Header {
		hr.Header[k] = v
	}
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	hr.Header.Set(HeaderAppID, f.AppID)
	hr.Header.Set(HeaderKeyID, f.KeyID)
	hr.Header.Set(HeaderTimestamp, f.Timestamp)
	hr.Header.Set(HeaderNonce, f.Nonce)
	hr.Header.Set(HeaderBodySM3, f.BodySM3)
	if f.Envelope != "" {
		hr.Header.Set(HeaderEnvelope, f.Envelope)
	}
	hr.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return hr, p, nil
}

// Authenticate checks an answer to the pending request and returns its plaintext.
func (p *Pending) Authenticate(status int, header http.Header, raw []byte) (*Response, error) {
	f, session := p.f, p.session
	out := &Response{StatusCode: status, Header: header, ContentType: header.Get("Content-Type"), Body: raw}
	sigText := header.Get(HeaderSignature)
	if sigText == "" {
		if status >= 200 && status < 300 {
			return nil, fmt.Errorf("%w: unsigned %d", ErrNotAuthentic, status)
		}
		return out, nil
	}
	keyID := header.Get(HeaderKeyID)
	pub := p.c.ServerSignKeys[keyID]
	if pub == nil {
		return nil, fmt.Errorf("%w: unknown server key", ErrNotAuthentic)
	}
	if header.Get(HeaderRequestNonce) != f.Nonce {
		return nil, fmt.Errorf("%w: bound to another request", ErrNotAuthentic)
	}
	rf := ResponseFields{Status: status, Function: f.Function, AppID: f.AppID, RequestNonce: f.Nonce, KeyID: keyID,
		Timestamp: header.Get(HeaderTimestamp), ContentType: out.ContentType, Envelope: header.Get(HeaderEnvelope),
		BodySM3: BodySM3(raw)}
	canon, err := CanonicalResponse(rf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAuthentic, err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sigText)
	if err != nil || !gm.Verify(pub, []byte(canon), sig) {
		return nil, fmt.Errorf("%w: signature", ErrNotAuthentic)
	}
	out.Signed = true
	switch {
	case session == nil && rf.Envelope != "":
		return nil, fmt.Errorf("%w: enveloped answer to a plain request", ErrNotAuthentic)
	case session != nil && rf.Envelope == "":
		if len(raw) == 0 && noBody(f.Method, status) {
			return out, nil
		}
		return nil, fmt.Errorf("%w: plain answer to an enveloped request", ErrNotAuthentic)
	case session != nil:
		env, err := parseEnvelope(raw, false)
		if err != nil {
			return nil, fmt.Errorf("%w: envelope", ErrNotAuthentic)
		}
		aad, err := ResponseAAD(rf, env.typ)
		if err != nil {
			return nil, fmt.Errorf("%w: envelope", ErrNotAuthentic)
		}
		pt, err := env.open(session, aad)
		if err != nil {
			return nil, fmt.Errorf("%w: envelope does not decrypt", ErrNotAuthentic)
		}
		out.Body, out.ContentType = pt, env.typ
	}
	return out, nil
}

// StatusError is a non-2xx answer; Problem holds its RFC 9457 body when it had one.
type StatusError struct {
	StatusCode int
	Signed     bool
	Problem    map[string]any
}

func (e *StatusError) Error() string {
	title, _ := e.Problem["title"].(string)
	return fmt.Sprintf("callsign: %d %s", e.StatusCode, title)
}

// CallJSON sends in as JSON (no body when nil) and decodes a 2xx answer into out (when
// not nil). A non-2xx answer is a *StatusError.
func (c *Client) CallJSON(ctx context.Context, method, path string, query url.Values, in, out any) (*Response, error) {
	r := Request{Method: method, Path: path, Query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		r.Body, r.ContentType = b, "application/json"
	}
	resp, err := c.Do(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{StatusCode: resp.StatusCode, Signed: resp.Signed}
		_ = json.Unmarshal(resp.Body, &se.Problem)
		return resp, se
	}
	if out != nil && len(resp.Body) > 0 {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return resp, fmt.Errorf("callsign: response body: %w", err)
		}
	}
	return resp, nil
}
