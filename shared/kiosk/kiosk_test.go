package kiosk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/problem"
)

func TestRegionCoversSubRegionsByPrefix(t *testing.T) {
	for _, c := range []struct {
		admin, kiosk string
		want         bool
	}{
		{"440000", "441900", true}, {"440000", "441901", true}, {"441900", "441901", true},
		{"441900", "440100", false}, {"441900", "440000", false}, {"441901", "441901", true},
		{"441901", "441902", false}, {"110000", "441900", false}, {"44000", "441900", false}, {"440000", "4419a0", false},
	} {
		if got := Covers(c.admin, c.kiosk); got != c.want {
			t.Errorf("Covers(%s, %s) = %v, want %v", c.admin, c.kiosk, got, c.want)
		}
	}
}

func params(err error) map[string]string {
	p, ok := problem.As(err)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, ip := range p.InvalidParams {
		out[ip.Name] = ip.Reason
	}
	return out
}

func TestBatchValidatedWholeNamingIndexAndField(t *testing.T) {
	s := &Service{}
	good := Event{ID: "0b5a3b8e-1f1e-4f57-9d55-2f4c1b0e8a01", Type: TypeHeartbeat, Time: "2026-12-04T08:00:00+08:00",
		Data: json.RawMessage(`{"status":"ok","version":"1.0","queuedEvents":0,"components":{"reader":"ok","printer":"fault"}}`)}
	bad := good
	bad.ID = "0b5a3b8e-1f1e-4f57-9d55-2f4c1b0e8a02"
	bad.Data = json.RawMessage(`{"status":"sleepy","version":"1.0","components":{"reader":"broken"}}`)
	card := Event{ID: "0b5a3b8e-1f1e-4f57-9d55-2f4c1b0e8a03", Type: TypeCardRead, Time: "2026-12-04T08:00:01+08:00",
		Data: json.RawMessage(`{"cardNo":"x","cardType":"3","name":"张三"}`)}
	_, err := s.validate(Batch{Events: []Event{good, bad, card, {ID: "nope", Type: "kiosk.other", Time: "yesterday", Data: json.RawMessage(`{}`)}}})
	p, _ := problem.As(err)
	if p == nil || p.Status != 422 {
		t.Fatalf("want 422, got %v", err)
	}
	got := params(err)
	for _, f := range []string{"events[1].data.status", "events[1].data.components.reader", "events[2].data.cardNo",
		"events[3].id", "events[3].time", "events[3].type"} {
		if got[f] == "" {
			t.Errorf("want a fault named %s, got %v", f, got)
		}
	}
	if _, ok := got["events[0].data.status"]; ok {
		t.Error("a valid event is not named")
	}
	if _, err := s.validate(Batch{Events: make([]Event, MaxBatch+1)}); params(err)["events"] == "" {
		t.Errorf("501 events: want refused, got %v", err)
	}
	// A card read keeps no card number and no name.
	card.Data = json.RawMessage(`{"cardNo":"A12345678","cardType":"3","issueDate":"20240101","expiryDate":"2034-01-01","name":"张三"}`)
	s.CardIndex = func(string) ([]byte, error) { return []byte{1, 2}, nil }
	evs, err := s.validate(Batch{Events: []Event{card}})
	if err != nil {
		t.Fatal(err)
	}
	if d := string(evs[0].data); strings.Contains(d, "A12345678") || strings.Contains(d, "张三") || !strings.Contains(d, `"cardNoBidx":"0102"`) {
		t.Errorf("stored card read %s", d)
	}
}

func TestCommandArgs(t *testing.T) {
	if _, p := checkArgs("pause", nil); len(p) != 0 {
		t.Errorf("pause without args: %v", p)
	}
	if _, p := checkArgs("reboot", json.RawMessage(`{"now":true}`)); len(p) == 0 {
		t.Error("reboot with args: want refused")
	}
	ok := `{"url":"http://127.0.0.1:9000/models/edge?X-Amz-Signature=abc","signature":"MEUCIQDxMEUCIQDxMEUCIQDx","version":"1.4.2"}`
	if _, p := checkArgs("upgrade", json.RawMessage(ok)); len(p) != 0 {
		t.Errorf("upgrade: %v", p)
	}
	if _, p := checkArgs("upgrade", json.RawMessage(`{"url":"ftp://x/y","signature":"***","version":""}`)); len(p) != 3 {
		t.Errorf("bad upgrade: want url, signature and version named, got %v", p)
	}
}

func workbook(t *testing.T, rows int) []byte {
	t.Helper()
	f := excelize.NewFile()
	sw, _ := f.NewStreamWriter("Sheet1")
	h := make([]any, len(Columns))
	for i, c := range Columns {
		h[i] = c
	}
	_ = sw.SetRow("A1", h)
	for i := 0; i < rows; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		_ = sw.SetRow(cell, []any{fmt.Sprintf("K%04d", i), "kiosk", "441900", "", "", "x"})
	}
	_ = sw.Flush()
	var b bytes.Buffer
	_ = f.Write(&b)
	return b.Bytes()
}

func TestWorkbookRowLimit(t *testing.T) {
	rows, err := readWorkbook(context.Background(), workbook(t, MaxBatchRows))
	if err != nil || len(rows) != MaxBatchRows || rows[0].n != 2 || rows[0].cells[0] != "K0000" {
		t.Fatalf("1,000 rows: %d %v", len(rows), err)
	}
	_, err = readWorkbook(context.Background(), workbook(t, MaxBatchRows+1))
	if p, _ := problem.As(err); p == nil || p.Status != 422 || params(err)["file"] == "" {
		t.Fatalf("1,001 rows: want 422 naming the file, got %v", err)
	}
	if _, err := readWorkbook(context.Background(), []byte("not a zip")); params(err)["file"] == "" {
		t.Errorf("not a workbook: %v", err)
	}
}
