package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/sscard/platform/shared/problem"
)

// routes is the gateway's HTTP surface, shaped like the OpenFaaS gateway's where one exists.
func routes(sup *supervisor, async *asyncQueue, crn *scheduler, upstream time.Duration, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	proxies := map[string]*httputil.ReverseProxy{}
	for _, name := range sup.names() {
		p, _ := sup.get(name)
		proxies[name] = newProxy(p, upstream, log)
	}
	invoke := func(w http.ResponseWriter, r *http.Request) {
		// cron-connector and other OpenFaaS clients call <name>.<namespace>; there is one
		// namespace here.
		name, _, _ := strings.Cut(r.PathValue("name"), ".")
		p, ok := sup.get(name)
		if !ok {
			writeProblem(w, problem.NotFound("no function named "+name))
			return
		}
		if p.replicas() == 0 {
			pr := problem.New(http.StatusServiceUnavailable, "no-replicas", "Function not running",
				name+" has no running replica")
			pr.RetryAfter = 2 * time.Second
			writeProblem(w, pr)
			return
		}
		proxies[name].ServeHTTP(w, r)
	}
	mux.HandleFunc("/function/{name}", invoke)
	mux.HandleFunc("/function/{name}/{rest...}", invoke)
	mux.HandleFunc("POST /async-function/{name}", async.handle)
	mux.HandleFunc("POST /async-function/{name}/{rest...}", async.handle)

	mux.HandleFunc("GET /system/functions", func(w http.ResponseWriter, r *http.Request) {
		type status struct {
			Name              string            `json:"name"`
			Image             string            `json:"image"`
			Replicas          int               `json:"replicas"`
			AvailableReplicas int               `json:"availableReplicas"`
			Labels            map[string]string `json:"labels"`
			Annotations       map[string]string `json:"annotations"`
			URL               string            `json:"url"`
		}
		var out []status
		for _, name := range sup.names() {
			p, _ := sup.get(name)
			n := p.replicas()
			out = append(out, status{Name: name, Image: p.spec.Image, Replicas: n, AvailableReplicas: n,
				Labels: p.spec.Labels, Annotations: p.spec.Annotations, URL: p.url()})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /system/scale-function/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := sup.get(r.PathValue("name"))
		if !ok {
			writeProblem(w, problem.NotFound("no function named "+r.PathValue("name")))
			return
		}
		var req struct {
			Replicas *int `json:"replicas"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Replicas == nil || *req.Replicas < 0 {
			writeProblem(w, problem.Invalid("want {\"replicas\": n} with n ≥ 0", problem.Field("replicas", "required, a non-negative integer")))
			return
		}
		if err := p.scale(r.Context(), *req.Replicas); err != nil {
			writeProblem(w, problem.Internal(err))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /system/schedules", func(w http.ResponseWriter, r *http.Request) {
		if crn == nil {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		writeJSON(w, http.StatusOK, crn.list())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "OK") })
	return mux
}

// newProxy forwards /function/<name>/rest to the process as /rest, like the OpenFaaS gateway.
func newProxy(p *process, upstream time.Duration, log *slog.Logger) *httputil.ReverseProxy {
	transport := &http.Transport{
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: upstream,
	}
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The process's address at this moment: a restart may move it to another port.
			pr.SetURL(&url.URL{Scheme: "http", Host: p.host()})
			rest := pr.In.PathValue("rest")
			pr.Out.URL.Path = "/" + rest
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Uri", pr.In.URL.RequestURI())
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("upstream error", "function", p.name, "error", err.Error())
			pr := problem.New(http.StatusBadGateway, "upstream-error", "Function unreachable",
				p.name+" did not answer")
			if errors.Is(err, http.ErrHandlerTimeout) || strings.Contains(err.Error(), "timeout") {
				pr = problem.New(http.StatusGatewayTimeout, "upstream-timeout", "Function timed out",
					p.name+" did not answer within the upstream timeout")
			}
			writeProblem(w, pr)
		},
	}
}

func writeProblem(w http.ResponseWriter, p *problem.Problem) {
	for k, v := range p.Headers() {
		w.Header()[k] = v
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(p.Body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
