// Package upgrade replaces the edge-bridge binary: it downloads a new build (from a
// presigned object-store URL), verifies the SM2 signature over the whole file against the
// upgrade signing key of the configuration, and swaps it in, keeping the previous binary
// for a rollback. Whether the new build is kept is decided after it starts (see Pending).
package upgrade

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/sscard/platform/shared/gm"
)

// Args are the upgrade command's arguments.
type Args struct {
	URL       string `json:"url"`
	Signature string `json:"signature"` // base64 DER SM2 signature over the file
	Version   string `json:"version"`
	SHA256    string `json:"sha256,omitempty"`
}

// Pending is an upgrade swapped in but not yet confirmed healthy; it lives in the state
// file across the restart into the new build.
type Pending struct {
	CommandID string    `json:"commandId"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Deadline  time.Time `json:"deadline"` // the new build must report healthy before this
	Starts    int       `json:"starts"`   // starts of the new build so far
}

// ErrBadSignature: the file is not signed by the upgrade key.
var ErrBadSignature = errors.New("upgrade: signature does not verify against the upgrade signing key")

// Upgrader swaps the binary at Exe.
type Upgrader struct {
	Exe      string           // the running binary
	Key      *ecdsa.PublicKey // the upgrade signing public key; nil refuses every upgrade
	HTTP     *http.Client
	MaxBytes int64 // default 256 MiB
}

// Stage downloads and verifies the build of a and writes it next to Exe, returning its
// path. Nothing is swapped yet.
func (u *Upgrader) Stage(ctx context.Context, a Args) (string, error) {
	if u.Key == nil {
		return "", errors.New("upgrade: no upgrade signing key configured")
	}
	if a.URL == "" || a.Version == "" {
		return "", errors.New("upgrade: url and version are required")
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || len(sig) == 0 {
		return "", fmt.Errorf("%w (not base64)", ErrBadSignature)
	}
	limit := u.MaxBytes
	if limit <= 0 {
		limit = 256 << 20
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return "", err
	}
	hc := u.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("upgrade: download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upgrade: download: HTTP %d", resp.StatusCode)
	}
	// SM2 signs SM3(Z_A || message): the whole file is held once in memory to verify it.
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1)); err != nil {
		return "", fmt.Errorf("upgrade: download: %w", err)
	}
	if int64(buf.Len()) > limit {
		return "", fmt.Errorf("upgrade: build larger than %d bytes", limit)
	}
	bin := buf.Bytes()
	if !gm.Verify(u.Key, bin, sig) {
		return "", ErrBadSignature
	}
	if a.SHA256 != "" {
		sum := sha256.Sum256(bin)
		if hex.EncodeToString(sum[:]) != a.SHA256 {
			return "", errors.New("upgrade: sha256 does not match")
		}
	}
	staged := u.Exe + ".new"
	if err := writeFileSync(staged, bin, 0o755); err != nil {
		return "", err
	}
	return staged, nil
}

// Swap puts the staged build in place of Exe and keeps the running one as Exe.prev.
func (u *Upgrader) Swap(staged string) error {
	prev := u.Exe + ".prev"
	_ = os.Remove(prev)
	if err := os.Link(u.Exe, prev); err != nil {
		if err := copyFile(u.Exe, prev); err != nil {
			return fmt.Errorf("upgrade: keep the previous build: %w", err)
		}
	}
	return os.Rename(staged, u.Exe)
}

// Rollback puts the previous build back.
func (u *Upgrader) Rollback() error {
	return os.Rename(u.Exe+".prev", u.Exe)
}

// Commit forgets the previous build.
func (u *Upgrader) Commit() error {
	err := os.Remove(u.Exe + ".prev")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFileSync(to, b, 0o755)
}
