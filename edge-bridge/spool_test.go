package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/sscard/platform/events"
)

func TestSpool_KeepsEventsUntilSentInOrder(t *testing.T) {
	sp, err := openSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ev, err := events.New(events.KioskHeartbeat, "/kiosks/k1", "", events.KioskHeartbeatData{
			KioskID: "k1", At: time.Now().Add(time.Duration(i) * time.Second).UTC(), Status: events.KioskStatusOK, Version: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID())
		if err := sp.put(ev); err != nil {
			t.Fatal(err)
		}
	}
	// A garbage file does not block the queue.
	if err := os.WriteFile(filepath.Join(sp.dir, "00000000000000000000-000000.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	var sent []string
	offline := errors.New("offline")
	n, err := sp.drain(context.Background(), func(_ context.Context, ev event.Event) error {
		if len(sent) == 1 {
			return offline // the link drops after the first event
		}
		sent = append(sent, ev.ID())
		return nil
	})
	if !errors.Is(err, offline) || n != 1 || sp.len() != 2 {
		t.Fatalf("after a failure: want 1 sent and 2 kept, got n=%d kept=%d err=%v", n, sp.len(), err)
	}
	n, err = sp.drain(context.Background(), func(_ context.Context, ev event.Event) error {
		sent = append(sent, ev.ID())
		return nil
	})
	if err != nil || n != 2 || sp.len() != 0 {
		t.Fatalf("back online: want 2 sent and none kept, got n=%d kept=%d err=%v", n, sp.len(), err)
	}
	for i := range ids {
		if sent[i] != ids[i] {
			t.Errorf("order: want %v, got %v", ids, sent)
			break
		}
	}
}
