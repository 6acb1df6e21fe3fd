package gm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/sscard/platform/shared/gm/gmbench"
)

var benchMsg = make([]byte, 256)

func BenchmarkSign(b *testing.B) {
	sk, _ := GenerateKey()
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gmbench.Compare(b, "ecdsa-p256", func(b *testing.B) {
		for b.Loop() {
			d := sha256.Sum256(benchMsg)
			if _, err := ecdsa.SignASN1(rand.Reader, ek, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	}, "sm2", func(b *testing.B) {
		for b.Loop() {
			if _, err := Sign(sk, benchMsg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	sk, _ := GenerateKey()
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ssig, _ := Sign(sk, benchMsg)
	d := sha256.Sum256(benchMsg)
	esig, _ := ecdsa.SignASN1(rand.Reader, ek, d[:])
	gmbench.Compare(b, "ecdsa-p256", func(b *testing.B) {
		for b.Loop() {
			d := sha256.Sum256(benchMsg)
			if !ecdsa.VerifyASN1(&ek.PublicKey, d[:], esig) {
				b.Fatal("verify")
			}
		}
	}, "sm2", func(b *testing.B) {
		for b.Loop() {
			if !Verify(&sk.PublicKey, benchMsg, ssig) {
				b.Fatal("verify")
			}
		}
	})
}

func BenchmarkSeal1KiB(b *testing.B) {
	key, _ := RandomKey(16)
	sm4gcm, _ := NewGCM(key)
	blk, _ := aes.NewCipher(key)
	aesgcm, _ := cipher.NewGCM(blk)
	pt := make([]byte, 1024)
	run := func(a cipher.AEAD) func(*testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := Seal(a, pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	gmbench.Compare(b, "aes128-gcm", run(aesgcm), "sm4-gcm", run(sm4gcm))
}

func BenchmarkHash1KiB(b *testing.B) {
	data := make([]byte, 1024)
	gmbench.Compare(b, "sha256", func(b *testing.B) {
		b.SetBytes(1024)
		for b.Loop() {
			sha256.Sum256(data)
		}
	}, "sm3", func(b *testing.B) {
		b.SetBytes(1024)
		for b.Loop() {
			SM3(data)
		}
	})
}
