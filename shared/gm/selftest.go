package gm

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// Known-answer vectors. Sources: SM3("abc") from GB/T 32905-2016 Appendix A.1; the SM4
// block from GB/T 32907-2016 Appendix A.1; SM4-GCM from RFC 8998 Appendix A.1; the SM2
// key pair is the GM/T 0003.5 example (private d → public (x, y)); the SM2 signature and
// HMAC-SM3 value were produced once with this package and pin regressions (the HMAC one
// is cross-checked against a hand-built ipad/opad construction in the tests).
const (
	katSM3Abc   = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
	katSM4Key   = "0123456789abcdeffedcba9876543210"
	katSM4Block = "681edf34d206965e86b3e94f536e4246"

	katGCMKey = "0123456789abcdeffedcba9876543210"
	katGCMIV  = "00001234567800000000abcd"
	katGCMAAD = "feedfacedeadbeeffeedfacedeadbeefabaddad2"
	katGCMPT  = "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd" +
		"eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
	katGCMCT = "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735" +
		"d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d" +
		"83de3541e4c2b58177e065a9bf7b62ec"

	katSM2D   = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
	katSM2X   = "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
	katSM2Y   = "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
	katSM2Msg = "sscard gm self-test"
	katSM2Sig = "3045022100b2f7982320d59fc1899a3172a90efe8adc4c9f867a1284e270d0c5d9a6948647" +
		"022066c1bb0f86828270ca23a9af34f02122b9586ada79b1c0bf4dcf12672c6a6b75"

	katHMACKey = "sscard self-test key"
	katHMAC    = "f3313b71ed985a593a948948bdc25e5d90057668cad1a944375e64d2534f9a6d"
)

var (
	selfTestOnce sync.Once
	selfTestErr  error
)

// SelfTest runs the known-answer tests of SM3, SM4 (block and GCM), HMAC-SM3 and SM2
// (key derivation, verification of a fixed signature, sign/verify and encrypt/decrypt
// round trips, rejection of a altered message), plus gmsm's own self-tests. It runs once
// per process; later calls return the first result. A process must not serve when it
// returns an error.
func SelfTest() error {
	selfTestOnce.Do(func() { selfTestErr = selfTest() })
	return selfTestErr
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("gm: bad constant vector: " + err.Error())
	}
	return b
}

func selfTest() error {
	fail := func(what string, err error) error {
		if err == nil {
			return fmt.Errorf("gm self-test: %s: wrong answer", what)
		}
		return fmt.Errorf("gm self-test: %s: %w", what, err)
	}
	for _, st := range []struct {
		name string
		fn   func() error
	}{{"gmsm sm3", sm3.SelfTest}, {"gmsm sm4", sm4.SelfTest}, {"gmsm sm2", sm2.SelfTest}} {
		if err := st.fn(); err != nil {
			return fail(st.name, err)
		}
	}

	// SM3
	if got := SM3([]byte("a"), []byte("bc")); hex.EncodeToString(got[:]) != katSM3Abc {
		return fail("SM3(abc)", nil)
	}
	// SM4 block, both directions.
	blk, err := sm4.NewCipher(unhex(katSM4Key))
	if err != nil {
		return fail("SM4 key", err)
	}
	out := make([]byte, 16)
	blk.Encrypt(out, unhex(katSM4Key)) // the standard's plaintext equals its key
	if !bytes.Equal(out, unhex(katSM4Block)) {
		return fail("SM4 encrypt", nil)
	}
	blk.Decrypt(out, out)
	if !bytes.Equal(out, unhex(katSM4Key)) {
		return fail("SM4 decrypt", nil)
	}
	// SM4-GCM
	aead, err := NewGCM(unhex(katGCMKey))
	if err != nil {
		return fail("SM4-GCM", err)
	}
	ct := aead.Seal(nil, unhex(katGCMIV), unhex(katGCMPT), unhex(katGCMAAD))
	if !bytes.Equal(ct, unhex(katGCMCT)) {
		return fail("SM4-GCM seal", nil)
	}
	pt, err := aead.Open(nil, unhex(katGCMIV), ct, unhex(katGCMAAD))
	if err != nil || !bytes.Equal(pt, unhex(katGCMPT)) {
		return fail("SM4-GCM open", err)
	}
	ct[0] ^= 1
	if _, err := aead.Open(nil, unhex(katGCMIV), ct, unhex(katGCMAAD)); err == nil {
		return fail("SM4-GCM tamper detection", nil)
	}
	// HMAC-SM3
	if hex.EncodeToString(HMAC([]byte(katHMACKey), []byte(katSM2Msg))) != katHMAC {
		return fail("HMAC-SM3", nil)
	}

	// SM2: the example key pair, a fixed signature, then fresh round trips.
	priv, err := sm2.NewPrivateKey(unhex(katSM2D))
	if err != nil {
		return fail("SM2 key", err)
	}
	if hex.EncodeToString(priv.X.FillBytes(make([]byte, 32))) != katSM2X ||
		hex.EncodeToString(priv.Y.FillBytes(make([]byte, 32))) != katSM2Y {
		return fail("SM2 public key derivation", nil)
	}
	pub := &priv.PublicKey
	if !Verify(pub, []byte(katSM2Msg), unhex(katSM2Sig)) {
		return fail("SM2 verify of the fixed signature", nil)
	}
	if Verify(pub, []byte(katSM2Msg+"!"), unhex(katSM2Sig)) {
		return fail("SM2 rejection of an altered message", nil)
	}
	return sm2RoundTrips(priv, pub)
}

func sm2RoundTrips(priv *sm2.PrivateKey, pub *ecdsa.PublicKey) error {
	msg := []byte(katSM2Msg)
	sig, err := Sign(priv, msg)
	if err != nil {
		return fmt.Errorf("gm self-test: SM2 sign: %w", err)
	}
	if !Verify(pub, msg, sig) {
		return errors.New("gm self-test: SM2 sign/verify round trip failed")
	}
	raw, err := RawSignature(sig)
	if err != nil {
		return fmt.Errorf("gm self-test: SM2 raw signature: %w", err)
	}
	if der, err := DERSignature(raw); err != nil || !Verify(pub, msg, der) {
		return errors.New("gm self-test: SM2 raw/DER conversion failed")
	}
	ct, err := Encrypt(pub, msg)
	if err != nil {
		return fmt.Errorf("gm self-test: SM2 encrypt: %w", err)
	}
	pt, err := Decrypt(priv, ct)
	if err != nil || !bytes.Equal(pt, msg) {
		return errors.New("gm self-test: SM2 encrypt/decrypt round trip failed")
	}
	ct[len(ct)-1] ^= 1
	if _, err := Decrypt(priv, ct); err == nil {
		return errors.New("gm self-test: SM2 accepted an altered ciphertext")
	}
	return nil
}
