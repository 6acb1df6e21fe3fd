package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/shared/sscard"
)

// dailyLog writes the daemon's log to one file per China-time day
// (edge-bridge-YYYY-MM-DD.log); log shipping uploads whole past days.
type dailyLog struct {
	dir string

	mu   sync.Mutex
	day  string
	file *os.File
}

func (d *dailyLog) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	day := time.Now().In(sscard.China).Format(time.DateOnly)
	if day != d.day || d.file == nil {
		if d.file != nil {
			d.file.Close()
		}
		f, err := os.OpenFile(filepath.Join(d.dir, "edge-bridge-"+day+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		d.file, d.day = f, day
	}
	return d.file.Write(p)
}

func (d *dailyLog) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return nil
	}
	return d.file.Close()
}

// logUpload is one queued log file.
type logUpload struct {
	Date string `json:"date"`
	Gzip []byte `json:"gzip"`
}

// shipLogs queues the log files of past days not shipped yet, and today's so far when
// today is set (the upload-logs command); a past day is marked shipped in the same
// transaction that queues it.
func (b *bridge) shipLogs(today bool) (int, error) {
	files, _ := filepath.Glob(filepath.Join(b.logs.dir, "edge-bridge-*.log"))
	sort.Strings(files)
	now := time.Now().In(sscard.China).Format(time.DateOnly)
	n := 0
	for _, f := range files {
		day := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "edge-bridge-"), ".log")
		if day > now || (day == now && !today) {
			continue
		}
		key := "logs.shipped." + day
		if v, _ := b.st.Get(key); v != nil && day != now {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, _ = w.Write(raw)
		_ = w.Close()
		v, _ := json.Marshal(logUpload{Date: day, Gzip: gz.Bytes()})
		if err := b.withTx(func(tx *bolt.Tx) error {
			if err := b.uploads.AppendTx(tx, v); err != nil {
				return err
			}
			if day == now {
				return nil
			}
			return store.PutTx(tx, key, []byte("queued"))
		}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
