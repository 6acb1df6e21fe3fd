// Command keygen writes the local security secrets that are missing from a secrets
// directory (mode 600 files, directory 700). It never overwrites a file, so it is safe to
// run on every start; production keys come from the HSM/KMS and the secret store, not
// from here.
//
//	keygen -dir .state/run/secrets
//
// Secrets (see shared/callsign, shared/pii, shared/audit):
//
//	callsign-sign-key, callsign-sign-public-key   SM2 key that signs responses (PKCS#8 / PKIX PEM)
//	callsign-enc-key, callsign-enc-public-key     SM2 key that opens request envelopes
//	callsign-registry-mac-key                     HMAC-SM3 key of the caller registry (hex, 32 bytes)
//	pii-kek                                       SM4 key-encryption keys, "1:<hex>" (one version per line)
//	pii-index-key                                 HMAC-SM3 blind-index key (hex, 32 bytes)
//	audit-sign-key, audit-sign-public-key         SM2 key that signs audit checkpoints
//	ecard-local-private-key, ecard-platform-public-key  the local e-card authority's key pair
//	                                              (development and tests; production mounts the
//	                                              real platform's public key)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/ecard"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/pii"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "", "secrets directory (created if missing)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fl.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: keygen -dir DIR")
		return 2
	}
	if err := gm.SelfTest(); err != nil {
		fmt.Fprintln(stderr, "keygen:", err)
		return 1
	}
	written, err := Ensure(*dir)
	for _, name := range written {
		fmt.Fprintln(stdout, "wrote", name)
	}
	if err != nil {
		fmt.Fprintln(stderr, "keygen:", err)
		return 1
	}
	if len(written) == 0 {
		fmt.Fprintln(stdout, "all security secrets present in", *dir)
	}
	return 0
}

// Ensure writes the missing secrets into dir and returns the names it wrote.
func Ensure(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var written []string
	pairs := [][2]string{
		{callsign.SecretSignKey, callsign.SecretSignPublic},
		{callsign.SecretEncKey, callsign.SecretEncPublic},
		{audit.SecretSignKey, audit.SecretPublicKey},
	}
	for _, p := range pairs {
		w, err := ensurePair(dir, p[0], p[1])
		written = append(written, w...)
		if err != nil {
			return written, err
		}
	}
	symmetric := []struct {
		name string
		make func() (string, error)
	}{
		{callsign.SecretRegistryMAC, hexKey(32)},
		{pii.SecretIndexKey, hexKey(32)},
		{pii.SecretKEK, func() (string, error) {
			k, err := gm.RandomKey(gm.SM4KeySize)
			if err != nil {
				return "", err
			}
			return "# pii-kek: SM4 key-encryption keys, one \"<version>:<hex>\" per line; the highest version is active\n" +
				pii.FormatKEK(1, k) + "\n", nil
		}},
	}
	if !exists(dir, ecard.LocalKeySecret) || !exists(dir, ecard.PlatformKeySecret) {
		if err := ecard.EnsureLocalKeys(dir); err != nil {
			return written, err
		}
		written = append(written, ecard.LocalKeySecret, ecard.PlatformKeySecret)
	}
	for _, s := range symmetric {
		if exists(dir, s.name) {
			continue
		}
		v, err := s.make()
		if err != nil {
			return written, err
		}
		if err := create(dir, s.name, []byte(v)); err != nil {
			return written, err
		}
		written = append(written, s.name)
	}
	return written, nil
}

func hexKey(n int) func() (string, error) {
	return func() (string, error) {
		k, err := gm.RandomKey(n)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%x\n", k), nil
	}
}

// ensurePair writes a new SM2 key and its public half when the private key is missing,
// or only the public half when it alone is missing. A public key without its private
// key is left alone (a deployment that mounts only public halves).
func ensurePair(dir, privName, pubName string) ([]string, error) {
	var written []string
	var key *sm2.PrivateKey
	switch {
	case exists(dir, privName):
		if exists(dir, pubName) {
			return nil, nil
		}
		b, err := os.ReadFile(filepath.Join(dir, privName))
		if err != nil {
			return nil, err
		}
		if key, err = gm.ParsePrivateKeyPEM(b); err != nil {
			return nil, fmt.Errorf("%s: %w", privName, err)
		}
	case exists(dir, pubName):
		return nil, nil
	default:
		var err error
		if key, err = gm.GenerateKey(); err != nil {
			return nil, err
		}
		pemText, err := gm.MarshalPrivateKeyPEM(key)
		if err != nil {
			return nil, err
		}
		if err := create(dir, privName, pemText); err != nil {
			return nil, err
		}
		written = append(written, privName)
	}
	pubPEM, err := gm.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		return written, err
	}
	if err := create(dir, pubName, pubPEM); err != nil {
		return written, err
	}
	return append(written, pubName), nil
}

func exists(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, name))
	return err == nil
}

// create writes a new file with mode 600 and fails if it exists.
func create(dir, name string, content []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // someone else wrote it meanwhile: keep theirs
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
