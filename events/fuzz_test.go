package events

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// FuzzFromHTTP feeds arbitrary headers and bodies to the receive path, which
// faces the network: it must never panic, and anything it accepts must pass
// the gate on its own.
func FuzzFromHTTP(f *testing.F) {
	ev, err := New(KioskHeartbeat, "/kiosks/KSK-0001", "KSK-0001", KioskHeartbeatData{
		KioskID: "KSK-0001", At: sampleTime, Status: KioskStatusOK, Version: "2.4.1",
	})
	if err != nil {
		f.Fatal(err)
	}
	bh, bb := binaryRequest(ev)
	sh, sb := structuredRequest(f, ev)
	f.Add(headerBlob(bh), bb)
	f.Add(headerBlob(sh), sb)
	f.Add("Content-Type: application/cloudevents-batch+json\n", []byte("[]"))
	f.Add("Content-Type: application/json\n", bb)

	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		got, err := FromHTTP(context.Background(), parseHeaderBlob(headers), body)
		if err != nil {
			return
		}
		if err := Validate(got); err != nil {
			t.Fatalf("FromHTTP accepted an event that Validate rejects: %v", err)
		}
	})
}

// headerBlob and parseHeaderBlob use a "Key: value" line format so the
// fuzzer can invent, drop and duplicate headers.
func headerBlob(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.String()
}

func parseHeaderBlob(s string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}
