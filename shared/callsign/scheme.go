// Package callsign is the signed and enveloped call scheme between callers of function
// endpoints (apps, banks, kiosks, the edge-bridge) and the functions.
//
// # Request
//
// The caller sends these headers:
//
//	X-GM-AppId      registered caller                 [A-Za-z0-9._-]{1,64}
//	X-GM-KeyId      which of the caller's SM2 keys signed (keys rotate with overlap)
//	X-GM-Timestamp  Unix seconds; accepted within ±Window (default 300 s) of the server clock
//	X-GM-Nonce      16–64 characters [A-Za-z0-9_-], 128 random bits or more; single use
//	X-GM-Body-SM3   hex SM3 of the body bytes as sent
//	X-GM-Envelope   key ID of the server encryption key, only when the body is an envelope
//	X-GM-Signature  base64 (standard) SM2-with-SM3 DER signature, default UID, over:
//
//	GM1-SM2-SM3-REQ\n METHOD\n function\n path\n query\n appId\n keyId\n timestamp\n nonce\n envelope\n bodySM3\n
//
// (one field per line, no spaces; see CanonicalRequest). path is the path below the
// function (what runtime.Path returns) with every byte outside [A-Za-z0-9-._~/]
// percent-encoded; query is the query string decoded and re-encoded the same way, its
// pairs sorted by key (values of one key keep their order). No field may hold CR or LF.
//
// # Envelope
//
// With X-GM-Envelope the body is the JSON object
//
//	{"v":1,"key":"<b64 SM2 C1C3C2 ASN.1 of a fresh 16-byte SM4 key>","iv":"<b64 12 bytes>",
//	 "ct":"<b64 SM4-GCM ciphertext‖tag>","type":"<content type of the plaintext>"}
//
// and the GCM additional data is RequestAAD: every signed field but the body hash, and
// the type. The signature covers the envelope bytes, so the server rejects a forged
// request before any SM2 decryption.
//
// # Response
//
// The server signs every response to a verified request with its own SM2 key:
//
//	GM1-SM2-SM3-RESP\n status\n function\n appId\n requestNonce\n serverKeyId\n timestamp\n contentType\n envelope\n bodySM3\n
//
// in X-GM-Signature, with X-GM-KeyId, X-GM-Timestamp, X-GM-Request-Nonce and
// X-GM-Body-SM3. When the request was enveloped the response body is an envelope under
// the same SM4 key with a fresh IV ({"v":1,"iv":…,"ct":…,"type":…}, X-GM-Envelope:
// SM4-GCM, AAD = ResponseAAD), so the answer is bound to its request. Clients reject a
// 2xx that is not signed. Failures before the request is authenticated are unsigned
// problems: a uniform 401 that does not say which check failed, or 503 when the nonce
// store or the caller registry cannot be reached (the check fails closed).
package callsign

import (
	"encoding/hex"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/sscard/platform/shared/gm"
)

// Header names.
const (
	HeaderAppID        = "X-GM-AppId"
	HeaderKeyID        = "X-GM-KeyId"
	HeaderTimestamp    = "X-GM-Timestamp"
	HeaderNonce        = "X-GM-Nonce"
	HeaderBodySM3      = "X-GM-Body-SM3"
	HeaderEnvelope     = "X-GM-Envelope"
	HeaderSignature    = "X-GM-Signature"
	HeaderRequestNonce = "X-GM-Request-Nonce"
)

// Scheme labels (first line of each signed or authenticated string).
const (
	labelRequest     = "GM1-SM2-SM3-REQ"
	labelResponse    = "GM1-SM2-SM3-RESP"
	labelRequestAAD  = "GM1-ENV-REQ"
	labelResponseAAD = "GM1-ENV-RESP"
	// ResponseEnvelope is the X-GM-Envelope value of an enveloped response.
	ResponseEnvelope = "SM4-GCM"
	// EnvelopeType is the Content-Type of an envelope body.
	EnvelopeType = "application/vnd.sscard.gm-envelope+json"
)

// Limits on the signed fields.
const (
	maxPath        = 2048
	maxQuery       = 4096
	maxContentType = 256
)

// RequestFields are the signed fields of a request.
type RequestFields struct {
	Method    string
	Function  string
	Path      string // below the function, decoded ("/cards/1/loss")
	RawQuery  string // as sent, without "?"
	AppID     string
	KeyID     string
	Timestamp string
	Nonce     string
	Envelope  string // server encryption key ID, "" for a plain body
	BodySM3   string // lower-case hex
}

// ResponseFields are the signed fields of a response.
type ResponseFields struct {
	Status       int
	Function     string
	AppID        string
	RequestNonce string
	KeyID        string // server signing key
	Timestamp    string
	ContentType  string
	Envelope     string // ResponseEnvelope or ""
	BodySM3      string
}

func fieldErr(name string) error { return errors.New("callsign: malformed " + name) }

// CanonicalRequest is the string the caller signs. It fails when a field has a shape the
// scheme does not allow, so two different requests never share a string.
func CanonicalRequest(f RequestFields) (string, error) {
	lines, err := requestLines(f)
	if err != nil {
		return "", err
	}
	if !isHex64(f.BodySM3) {
		return "", fieldErr("body hash")
	}
	return join(labelRequest, append(lines, f.BodySM3)...), nil
}

// RequestAAD is the GCM additional data of a request envelope.
func RequestAAD(f RequestFields, innerType string) ([]byte, error) {
	lines, err := requestLines(f)
	if err != nil {
		return nil, err
	}
	if !validContentType(innerType, true) {
		return nil, fieldErr("envelope type")
	}
	return []byte(join(labelRequestAAD, append(lines, innerType)...)), nil
}

func requestLines(f RequestFields) ([]string, error) {
	if !isMethod(f.Method) {
		return nil, fieldErr("method")
	}
	if !isFunction(f.Function) {
		return nil, fieldErr("function")
	}
	path, err := CanonicalPath(f.Path)
	if err != nil {
		return nil, err
	}
	query, err := CanonicalQuery(f.RawQuery)
	if err != nil {
		return nil, err
	}
	if !isID(f.AppID) {
		return nil, fieldErr("app id")
	}
	if !isID(f.KeyID) {
		return nil, fieldErr("key id")
	}
	if _, ok := parseTimestamp(f.Timestamp); !ok {
		return nil, fieldErr("timestamp")
	}
	if !isNonce(f.Nonce) {
		return nil, fieldErr("nonce")
	}
	if f.Envelope != "" && !isID(f.Envelope) {
		return nil, fieldErr("envelope key id")
	}
	return []string{f.Method, f.Function, path, query, f.AppID, f.KeyID, f.Timestamp, f.Nonce, f.Envelope}, nil
}

// CanonicalResponse is the string the server signs.
func CanonicalResponse(f ResponseFields) (string, error) {
	lines, err := responseLines(f)
	if err != nil {
		return "", err
	}
	if f.Envelope != "" && f.Envelope != ResponseEnvelope {
		return "", fieldErr("envelope")
	}
	if !isHex64(f.BodySM3) {
		return "", fieldErr("body hash")
	}
	return join(labelResponse, append(lines, f.ContentType, f.Envelope, f.BodySM3)...), nil
}

// ResponseAAD is the GCM additional data of a response envelope.
func ResponseAAD(f ResponseFields, innerType string) ([]byte, error) {
	lines, err := responseLines(f)
	if err != nil {
		return nil, err
	}
	if !validContentType(innerType, true) {
		return nil, fieldErr("envelope type")
	}
	return []byte(join(labelResponseAAD, append(lines, innerType)...)), nil
}

func responseLines(f ResponseFields) ([]string, error) {
	switch {
	case f.Status < 100 || f.Status > 599:
		return nil, fieldErr("status")
	case !isFunction(f.Function):
		return nil, fieldErr("function")
	case !isID(f.AppID):
		return nil, fieldErr("app id")
	case !isNonce(f.RequestNonce):
		return nil, fieldErr("request nonce")
	case !isID(f.KeyID):
		return nil, fieldErr("key id")
	case !validContentType(f.ContentType, true):
		return nil, fieldErr("content type")
	}
	if _, ok := parseTimestamp(f.Timestamp); !ok {
		return nil, fieldErr("timestamp")
	}
	return []string{strconv.Itoa(f.Status), f.Function, f.AppID, f.RequestNonce, f.KeyID, f.Timestamp}, nil
}

func join(label string, lines ...string) string {
	n := len(label) + 1
	for _, l := range lines {
		n += len(l) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(label)
	b.WriteByte('\n')
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// CanonicalPath percent-encodes every byte of a decoded path outside [A-Za-z0-9-._~/].
func CanonicalPath(p string) (string, error) {
	if p == "" || p[0] != '/' || len(p) > maxPath {
		return "", fieldErr("path")
	}
	return escape(p, true), nil
}

// CanonicalQuery decodes a raw query string and re-encodes it strictly: pairs sorted by
// key (stable, so the values of one key keep their order), every byte outside
// [A-Za-z0-9-._~] percent-encoded, empty pairs dropped. A query that does not decode is
// an error, and so is one whose canonical form is longer than the limit (encoding can
// triple it): the canonical form must itself be a query this function accepts unchanged.
func CanonicalQuery(raw string) (string, error) {
	if len(raw) > maxQuery {
		return "", fieldErr("query")
	}
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return "", fieldErr("query")
		}
		pairs = append(pairs, pair{escape(dk, false), escape(dv, false)})
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	if b.Len() > maxQuery {
		return "", fieldErr("query")
	}
	return b.String(), nil
}

func escape(s string, keepSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isMethod(s string) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isFunction(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isID: app IDs and key IDs.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isNonce(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validContentType: printable ASCII, bounded; empty allowed when emptyOK.
func validContentType(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	if len(s) > maxContentType {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseTimestamp accepts decimal Unix seconds in canonical form (no sign, no leading zero).
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != s {
		return 0, false
	}
	return v, true
}

// BodySM3 is the hex SM3 of body, as X-GM-Body-SM3 carries it.
func BodySM3(body []byte) string {
	h := gm.SM3(body)
	return hex.EncodeToString(h[:])
}
