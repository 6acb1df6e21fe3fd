//go:build integration

package tests

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
)

// signer is a caller registered in the platform's database with a key of its own, as
// `callers register` does. Register every caller of a test before its first signed call:
// a function reloads its registry snapshot at most every 30 s.
type signer struct {
	p     *localPlatform
	appID string
	key   *sm2.PrivateKey
}

// register adds app id of kind with routes (the kind's preset when nil) and a new key.
func (p *localPlatform) register(t *testing.T, appID, kind string, routes []string) *signer {
	t.Helper()
	ctx := context.Background()
	macKey, err := gm.DecodeHexKey(p.env.Secret(t, callsign.SecretRegistryMAC), 32, false)
	if err != nil {
		t.Fatal(err)
	}
	if routes == nil {
		routes = channelauth.Routes(kind)
	}
	key, err := gm.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pool := p.env.Pool(t, p.dsn)
	if err := callsign.PutApp(ctx, pool, macKey, callsign.App{ID: appID, Name: "test " + kind, Kind: kind, Active: true,
		Routes: routes}); err != nil {
		t.Fatal(err)
	}
	if err := callsign.PutKey(ctx, pool, macKey, callsign.Key{AppID: appID, ID: "k1", Public: &key.PublicKey,
		NotBefore: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return &signer{p: p, appID: appID, key: key}
}

// client signs calls to function fn through the gateway, enveloped when envelope.
func (s *signer) client(t *testing.T, fn string, envelope bool) *callsign.Client {
	t.Helper()
	sign, err := gm.ParsePublicKeyPEM([]byte(s.p.env.Secret(t, callsign.SecretSignPublic)))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := gm.ParsePublicKeyPEM([]byte(s.p.env.Secret(t, callsign.SecretEncPublic)))
	if err != nil {
		t.Fatal(err)
	}
	return &callsign.Client{HTTP: &http.Client{Timeout: 20 * time.Second}, BaseURL: s.p.url + "/function/" + fn, Function: fn,
		AppID: s.appID, KeyID: "k1", Key: s.key, ServerSignKeys: map[string]*ecdsa.PublicKey{gm.KeyID(sign): sign},
		ServerEncKey: enc, Envelope: envelope}
}

// do sends one signed call (JSON when body is not a []byte) and returns the verified answer.
func (s *signer) do(t *testing.T, fn, method, path string, h http.Header, body any) *callsign.Response {
	t.Helper()
	r := callsign.Request{Method: method, Path: path, Header: h}
	switch b := body.(type) {
	case nil:
	case []byte:
		r.Body, r.ContentType = b, h.Get("Content-Type")
	default:
		r.Body, _ = json.Marshal(b)
		r.ContentType = "application/json"
	}
	resp, err := s.client(t, fn, false).Do(context.Background(), r)
	if err != nil {
		t.Fatalf("%s %s %s as %s: %v", method, fn, path, s.appID, err)
	}
	return resp
}
