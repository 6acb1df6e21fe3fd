package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestQueueOrderAckAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := s.Queue("events")
	for i := range 10 {
		if err := q.Append([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	items, _ := q.Peek(4)
	if len(items) != 4 || string(items[0].Value) != "0" || string(items[3].Value) != "3" || q.Len() != 10 {
		t.Fatalf("%v len %d", items, q.Len())
	}
	if err := q.Ack(items[3].Seq); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopened: the six not acknowledged are still there, in order, and new ones follow.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q, _ = s.Queue("events")
	_ = q.Append([]byte("10"))
	items, _ = q.Peek(100)
	if q.Len() != 7 || len(items) != 7 || string(items[0].Value) != "4" || string(items[6].Value) != "10" ||
		items[6].Seq <= items[5].Seq {
		t.Fatalf("after reopen: %d %v", q.Len(), items)
	}
	select {
	case <-q.Notify():
	default:
		t.Fatal("no notification after append")
	}
	if err := s.Put("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("k"); string(v) != "v" {
		t.Fatal(string(v))
	}
	_ = s.Put("k", nil)
	if v, _ := s.Get("k"); v != nil {
		t.Fatal("deleted setting still there")
	}
}
