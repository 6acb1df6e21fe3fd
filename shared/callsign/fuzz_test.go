package callsign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
)

// FuzzCanonicalRequest: whatever the fields, the builder either refuses them or yields
// exactly one line per field, from which the fields come back unchanged — so no field
// can smuggle another (no CR/LF injection) and two requests never share a string.
func FuzzCanonicalRequest(f *testing.F) {
	f.Add("POST", "loss-report", "/cards/C1/loss", "b=2&a=1", "bank-icbc", "k1", "1767225600",
		"0123456789abcdef0123456789abcdef", "", strings.Repeat("ab", 32))
	f.Add("GET", "kiosk", "/a\nb", "x=%0A&y=\r", "a\nb", "k", "1", "0123456789abcdef", "e\n", strings.Repeat("0", 64))
	f.Add("GET", "kiosk", "/%2F", "a+b=c+d&&=", "a", "k", "01", "0123456789abcdefg", "env", strings.Repeat("f", 64))
	f.Fuzz(func(t *testing.T, method, function, path, query, app, key, ts, nonce, env, bodyHash string) {
		in := RequestFields{Method: method, Function: function, Path: path, RawQuery: query, AppID: app, KeyID: key,
			Timestamp: ts, Nonce: nonce, Envelope: env, BodySM3: bodyHash}
		s, err := CanonicalRequest(in)
		if err != nil {
			return
		}
		lines := strings.Split(s, "\n")
		if len(lines) != 12 || lines[11] != "" || lines[0] != labelRequest {
			t.Fatalf("%d lines in %q", len(lines), s)
		}
		cp, _ := CanonicalPath(path)
		cq, _ := CanonicalQuery(query)
		want := []string{method, function, cp, cq, app, key, ts, nonce, env, bodyHash}
		for i, w := range want {
			if lines[i+1] != w {
				t.Fatalf("line %d: %q, field %q", i+1, lines[i+1], w)
			}
		}
		if back, err := url.PathUnescape(cp); err != nil || back != path {
			t.Fatalf("path %q does not come back from %q", path, cp)
		}
		if again, err := CanonicalQuery(cq); err != nil || again != cq {
			t.Fatalf("canonical query not stable: %q → %q", cq, again)
		}
	})
}

// FuzzParseEnvelope: the parser never panics, and what it accepts is within bounds and
// survives a re-encoding unchanged.
func FuzzParseEnvelope(f *testing.F) {
	k, _ := gm.GenerateKey()
	key, wrapped, _ := newSessionKey(&k.PublicKey)
	good, _ := sealEnvelope(key, wrapped, []byte(`{"card":"C1"}`), []byte("aad"), "application/json")
	resp, _ := sealEnvelope(key, nil, []byte(`{}`), []byte("aad"), "")
	f.Add(good, true)
	f.Add(resp, false)
	f.Add([]byte(`{"v":1,"iv":"AAAAAAAAAAAAAAAA","ct":"AAAAAAAAAAAAAAAAAAAAAA=="} {}`), false)
	f.Add([]byte(`{"v":1,"iv":"AAAAAAAAAAAAAAAA","ct":"AAAAAAAAAAAAAAAAAAAAAA==","x":1}`), false)
	f.Add([]byte(`[]`), true)
	f.Fuzz(func(t *testing.T, body []byte, wantKey bool) {
		p, err := parseEnvelope(body, wantKey)
		if err != nil {
			return
		}
		if len(p.iv) != gm.GCMNonceSize || len(p.ct) < gm.GCMTagSize || wantKey != (p.key != nil) ||
			wantKey && (len(p.key) < minWrappedKey || len(p.key) > maxWrappedKey) || !validContentType(p.typ, true) {
			t.Fatalf("accepted out-of-bounds envelope %q", body)
		}
		// Only canonical base64 is accepted (the decoder alone would skip CR/LF).
		var e envelope
		if err := json.Unmarshal(body, &e); err != nil || e.IV != base64.StdEncoding.EncodeToString(p.iv) ||
			e.CT != base64.StdEncoding.EncodeToString(p.ct) || wantKey && e.Key != base64.StdEncoding.EncodeToString(p.key) {
			t.Fatalf("non-canonical envelope accepted: %q", body)
		}
		// A random key never opens what the fuzzer made.
		if _, err := p.open(key, []byte("aad")); err == nil && !bytes.Equal(body, good) && !bytes.Equal(body, resp) {
			t.Logf("note: fuzzer reproduced a valid envelope under the seed key")
		}
	})
}

type alwaysFresh struct{}

func (alwaysFresh) Remember(context.Context, string, time.Duration) (bool, error) { return true, nil }

// FuzzVerify mutates the body and the headers of one genuine enveloped request: the
// verifier must never panic and must accept only the genuine request (whose plaintext
// it then returns unchanged).
func FuzzVerify(f *testing.F) {
	appKey, _ := sm2.NewPrivateKey(unhexT(f, "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"))
	sign, _ := gm.GenerateKey()
	enc, _ := gm.GenerateKey()
	reg, _ := Static([]App{{ID: testApp, Name: "b", Kind: "bank", Active: true, Routes: testRoutes}},
		[]Key{{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey}})
	c := &Client{Function: testFunction, AppID: testApp, KeyID: testKeyID, Key: appKey, ServerEncKey: &enc.PublicKey,
		Envelope: true, BaseURL: "http://x"}
	hr, _, err := c.NewHTTPRequest(context.Background(), lossRequest(`{"card":"C0001"}`))
	if err != nil {
		f.Fatal(err)
	}
	body, _ := readAll(hr)
	ts, _ := parseTimestamp(hr.Header.Get(HeaderTimestamp))
	v, err := New(Config{Function: testFunction, Registry: reg, Nonces: alwaysFresh{}, SignKey: sign,
		EncKeys: []crypto.Decrypter{enc}, Now: func() time.Time { return time.Unix(ts, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	h0 := hr.Header.Clone()
	f.Add(body, h0.Get(HeaderTimestamp), h0.Get(HeaderNonce), h0.Get(HeaderBodySM3), h0.Get(HeaderEnvelope), "/cards/C0001/loss")
	f.Fuzz(func(t *testing.T, b []byte, tsH, nonce, bodyHash, env, path string) {
		h := h0.Clone()
		h.Set(HeaderTimestamp, tsH)
		h.Set(HeaderNonce, nonce)
		h.Set(HeaderBodySM3, bodyHash)
		h.Set(HeaderEnvelope, env)
		h.Set("X-Function-Path", path)
		req := handler.Request{Method: http.MethodPost, Header: h, Body: b}
		vr, err := v.verify(&req)
		if err != nil {
			return
		}
		genuine := bytes.Equal(b, body) && tsH == h0.Get(HeaderTimestamp) && nonce == h0.Get(HeaderNonce) &&
			env == h0.Get(HeaderEnvelope) && path == "/cards/C0001/loss"
		if !genuine || string(vr.body) != `{"card":"C0001"}` {
			t.Fatalf("accepted a forged request: body %q ts %q nonce %q env %q path %q", b, tsH, nonce, env, path)
		}
	})
}

func unhexT(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
