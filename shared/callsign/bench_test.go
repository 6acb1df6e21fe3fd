package callsign

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"testing"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/gm/gmbench"
)

var benchBody = make([]byte, 1024)

// BenchmarkEnvelopeRoundTrip: the cryptography of one enveloped call — caller: fresh key,
// wrap it to the server, seal 1 KiB, sign; server: verify, unwrap, open, seal the answer,
// sign; caller: verify, open — with SM2/SM3/SM4 and with the standard library's
// counterparts (ECDSA P-256 + SHA-256, ECIES-style P-256 ECDH key wrap, AES-128-GCM).
func BenchmarkEnvelopeRoundTrip(b *testing.B) {
	// SM side
	cli, _ := gm.GenerateKey()
	srvSign, _ := gm.GenerateKey()
	srvEnc, _ := gm.GenerateKey()
	// standard side
	ecCli, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSrv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dhSrv, _ := ecdh.P256().GenerateKey(rand.Reader)
	canon := make([]byte, 200)

	std := func(b *testing.B) {
		for b.Loop() {
			key := make([]byte, 16)
			rand.Read(key)
			eph, _ := ecdh.P256().GenerateKey(rand.Reader) // wrap: ECDH + KDF + AES-GCM
			z, _ := eph.ECDH(dhSrv.PublicKey())
			kek := sha256.Sum256(z)
			wrapped := aesSeal(kek[:16], key)
			body := aesSeal(key, benchBody)
			d := sha256.Sum256(append(canon, body...))
			sig, _ := ecdsa.SignASN1(rand.Reader, ecCli, d[:])
			// server
			if !ecdsa.VerifyASN1(&ecCli.PublicKey, d[:], sig) {
				b.Fatal("verify")
			}
			z2, _ := dhSrv.ECDH(eph.PublicKey())
			kek2 := sha256.Sum256(z2)
			k2 := aesOpen(b, kek2[:16], wrapped)
			pt := aesOpen(b, k2, body)
			answer := aesSeal(k2, pt)
			d2 := sha256.Sum256(append(canon, answer...))
			sig2, _ := ecdsa.SignASN1(rand.Reader, ecSrv, d2[:])
			// caller
			if !ecdsa.VerifyASN1(&ecSrv.PublicKey, d2[:], sig2) {
				b.Fatal("verify")
			}
			aesOpen(b, key, answer)
		}
	}
	sm := func(b *testing.B) {
		for b.Loop() {
			key, wrapped, err := newSessionKey(&srvEnc.PublicKey)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := gm.SealKey(key, benchBody, canon)
			sig, _ := gm.Sign(cli, append(canon, body...))
			// server
			if !gm.Verify(&cli.PublicKey, append(canon, body...), sig) {
				b.Fatal("verify")
			}
			k2, err := gm.Decrypt(srvEnc, wrapped)
			if err != nil {
				b.Fatal(err)
			}
			pt, err := gm.OpenKey(k2, body, canon)
			if err != nil {
				b.Fatal(err)
			}
			answer, _ := gm.SealKey(k2, pt, canon)
			sig2, _ := gm.Sign(srvSign, append(canon, answer...))
			// caller
			if !gm.Verify(&srvSign.PublicKey, append(canon, answer...), sig2) {
				b.Fatal("verify")
			}
			if _, err := gm.OpenKey(key, answer, canon); err != nil {
				b.Fatal(err)
			}
		}
	}
	gmbench.Compare(b, "ecdsa-p256+ecdh+aes-gcm", std, "sm2+sm3+sm4-gcm", sm)
}

func aesSeal(key, pt []byte) []byte {
	blk, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(blk)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return a.Seal(nonce, nonce, pt, nil)
}

func aesOpen(b *testing.B, key, sealed []byte) []byte {
	blk, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(blk)
	pt, err := a.Open(nil, sealed[:12], sealed[12:], nil)
	if err != nil {
		b.Fatal(err)
	}
	return pt
}

// BenchmarkRequire is the latency the scheme adds to a trivial function, over real HTTP
// through runtime.Server: a trivial handler without Require, then with Require for a
// signed call and for a signed and enveloped one (client work included). The metric
// added-µs/op is the difference to the trivial handler.
func BenchmarkRequire(b *testing.B) {
	fx := newFixture(b, nil)
	var baseNs float64
	b.Run("trivial", func(b *testing.B) {
		for b.Loop() {
			resp, err := http.Get(fx.url + "/open")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		baseNs = gmbench.NsPerOp(b)
	})
	for _, env := range []bool{false, true} {
		name := "signed"
		if env {
			name = "signed+enveloped"
		}
		b.Run(name, func(b *testing.B) {
			c := fx.client(env, nil)
			for b.Loop() {
				if _, err := c.Do(context.Background(), lossRequest(`{"card":"C0001"}`)); err != nil {
					b.Fatal(err)
				}
			}
			if baseNs > 0 {
				b.ReportMetric((gmbench.NsPerOp(b)-baseNs)/1000, "added-µs/op")
			}
		})
	}
}

// BenchmarkRequireServerSide is the server's share alone: Require verifying (and
// decrypting) a request and signing (and sealing) the answer, called directly.
func BenchmarkRequireServerSide(b *testing.B) {
	fx := newFixture(b, func(c *Config) { c.Nonces = alwaysFresh{} })
	trivial := func(handler.Request) (handler.Response, error) {
		return handler.Response{StatusCode: 200, Body: []byte("{}")}, nil
	}
	for _, env := range []bool{false, true} {
		name := "signed"
		if env {
			name = "signed+enveloped"
		}
		c := fx.client(env, nil)
		hr, _, _ := c.NewHTTPRequest(context.Background(), lossRequest(`{"card":"C0001"}`))
		body, _ := readAll(hr)
		h := hr.Header.Clone()
		h.Set("X-Function-Path", "/cards/C0001/loss")
		req := handler.Request{Method: hr.Method, Header: h, Body: body}
		fn := Require(fx.v, trivial)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if res, err := fn(req); err != nil || res.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}
