package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/sscard/platform/shared/problem"
)

// asyncQueue plays OpenFaaS's /async-function: accept with 202 and an X-Call-Id, invoke
// later (one at a time per function, like the CE queue-worker), and POST the result to
// X-Callback-Url when given. Unlike NATS JetStream in a cluster, this queue lives in
// memory: it is for development, and work that must not be lost goes through events.
type asyncQueue struct {
	sup     *supervisor
	log     *slog.Logger
	client  *http.Client
	mu      sync.Mutex
	queues  map[string]chan asyncCall
	wg      sync.WaitGroup
	closing chan struct{}
}

type asyncCall struct {
	id, fn, path, query, method string
	header                      http.Header
	body                        []byte
	callback                    string
}

func newAsyncQueue(sup *supervisor, log *slog.Logger, upstream time.Duration) *asyncQueue {
	return &asyncQueue{sup: sup, log: log.With("component", "async"), client: &http.Client{Timeout: upstream},
		queues: map[string]chan asyncCall{}, closing: make(chan struct{})}
}

func (q *asyncQueue) handle(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := q.sup.get(name); !ok {
		writeProblem(w, problem.NotFound("no function named "+name))
		return
	}
	cb := r.Header.Get("X-Callback-Url")
	if cb != "" {
		if u, err := url.Parse(cb); err != nil || u.Host == "" {
			writeProblem(w, problem.Invalid("X-Callback-Url is not an absolute URL", problem.Field("X-Callback-Url", "not an absolute URL")))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeProblem(w, problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large", "async bodies are limited to 1 MiB"))
		return
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	call := asyncCall{id: hex.EncodeToString(b[:]), fn: name, path: "/" + r.PathValue("rest"), query: r.URL.RawQuery,
		method: r.Method, header: r.Header.Clone(), body: body, callback: cb}
	select {
	case q.queue(name) <- call:
		w.Header().Set("X-Call-Id", call.id)
		w.WriteHeader(http.StatusAccepted)
	default:
		writeProblem(w, problem.TooMany("the async queue of "+name+" is full", 2*time.Second))
	}
}

func (q *asyncQueue) queue(name string) chan asyncCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch, ok := q.queues[name]
	if !ok {
		ch = make(chan asyncCall, 1024)
		q.queues[name] = ch
		q.wg.Add(1)
		go q.work(ch)
	}
	return ch
}

func (q *asyncQueue) work(ch chan asyncCall) {
	defer q.wg.Done()
	for {
		select {
		case <-q.closing:
			return
		case c := <-ch:
			q.invoke(c)
		}
	}
}

func (q *asyncQueue) invoke(c asyncCall) {
	p, _ := q.sup.get(c.fn)
	u := p.url() + c.path
	if c.query != "" {
		u += "?" + c.query
	}
	start := time.Now()
	req, _ := http.NewRequest(c.method, u, bytes.NewReader(c.body))
	req.Header = c.header
	req.Header.Set("X-Call-Id", c.id)
	status, respBody := http.StatusBadGateway, []byte(nil)
	if resp, err := q.client.Do(req); err == nil {
		status = resp.StatusCode
		respBody, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	} else {
		q.log.Warn("async invocation failed", "function", c.fn, "call_id", c.id, "error", err.Error())
	}
	took := time.Since(start)
	q.log.Info("async invocation", "function", c.fn, "call_id", c.id, "status", status, "duration_ms", took.Milliseconds())
	if c.callback == "" {
		return
	}
	cb, _ := http.NewRequest(http.MethodPost, c.callback, bytes.NewReader(respBody))
	cb.Header.Set("X-Call-Id", c.id)
	cb.Header.Set("X-Function-Name", c.fn)
	cb.Header.Set("X-Function-Status", strconv.Itoa(status))
	cb.Header.Set("X-Duration-Seconds", strconv.FormatFloat(took.Seconds(), 'f', 6, 64))
	if resp, err := q.client.Do(cb); err == nil {
		resp.Body.Close()
	} else {
		q.log.Warn("async callback failed", "function", c.fn, "call_id", c.id, "error", err.Error())
	}
}

func (q *asyncQueue) close() {
	close(q.closing)
	q.wg.Wait()
}
