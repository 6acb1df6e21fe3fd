package main

import (
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sscard/platform/infra/stack"
)

// scheduler does what OpenFaaS's cron-connector does: for each function annotated
// topic=cron-function it POSTs an empty body to /function/<name> on the schedule, with
// the connector's headers. Schedules are evaluated in UTC, the time zone of the
// connector's container, so stack.yml's schedules mean the same here as there.
type scheduler struct {
	c       *cron.Cron
	entries map[string]cron.EntryID
	specs   map[string]string
	log     *slog.Logger
}

// Entry is one schedule as GET /system/schedules shows it.
type Entry struct {
	Function string    `json:"function"`
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next"`
}

func newScheduler(f *stack.File, gateway string, log *slog.Logger) *scheduler {
	s := &scheduler{c: cron.New(cron.WithLocation(time.UTC)), entries: map[string]cron.EntryID{}, specs: map[string]string{}, log: log}
	client := &http.Client{Timeout: stack.GatewayUpstreamTimeout}
	for _, name := range f.Names() {
		spec, ok := f.Functions[name].Schedule()
		if !ok {
			continue
		}
		url := gateway + "/function/" + name
		id, err := s.c.AddFunc(spec, func() { s.fire(client, name, url) })
		if err != nil {
			// stack validation rejects these; cron-connector would skip them silently.
			log.Error("bad schedule", "function", name, "schedule", spec, "error", err.Error())
			continue
		}
		s.entries[name], s.specs[name] = id, spec
	}
	return s
}

func (s *scheduler) fire(client *http.Client, name, url string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(""))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Topic", "cron-function")
	req.Header.Set("X-Connector", "cron-connector")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.log.Error("scheduled invocation failed", "function", name, "error", err.Error())
		return
	}
	resp.Body.Close()
	s.log.Info("scheduled invocation", "function", name, "status", resp.StatusCode, "duration_ms", time.Since(start).Milliseconds())
}

func (s *scheduler) start() { s.c.Start() }
func (s *scheduler) stop()  { <-s.c.Stop().Done() }

func (s *scheduler) list() []Entry {
	out := make([]Entry, 0, len(s.entries))
	for name, id := range s.entries {
		e := s.c.Entry(id)
		next := e.Next
		if next.IsZero() { // not started yet
			next = e.Schedule.Next(time.Now().UTC())
		}
		out = append(out, Entry{Function: name, Schedule: s.specs[name], Next: next})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}
