package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/inbox"
	"github.com/sscard/platform/shared/problem"
)

// HandlerFunc is the templates-sdk handler signature.
type HandlerFunc func(req handler.Request) (handler.Response, error)

// EventFunc carries out the effect of one CloudEvent inside the transaction that also
// records the event as processed (see package inbox). Returning a *problem.Problem with a
// 4xx status rejects the event for good; any other error makes the broker retry.
type EventFunc func(ctx context.Context, tx pgx.Tx, ev event.Event) error

// Router dispatches one function's requests: HTTP routes by method and path pattern,
// CloudEvents by type, and scheduled triggers (cron-connector's empty POST or a Knative
// PingSource event). It implements handler.FunctionHandler.
type Router struct {
	name     string
	routes   []route
	events   map[events.Type]EventFunc
	schedule HandlerFunc
	inbox    *pgxpool.Pool
}

type route struct {
	method  string
	pattern string
	parts   []string
	fn      HandlerFunc
}

// NewRouter returns an empty router for function name.
func NewRouter(name string) *Router {
	return &Router{name: name, events: map[events.Type]EventFunc{}}
}

// Route registers fn for method and a pattern such as "/cards/{id}/loss".
func (r *Router) Route(method, pattern string, fn HandlerFunc) {
	r.routes = append(r.routes, route{method: method, pattern: pattern, parts: split(pattern), fn: fn})
}

// Get and Post are shorthands for Route.
func (r *Router) Get(pattern string, fn HandlerFunc)  { r.Route(http.MethodGet, pattern, fn) }
func (r *Router) Post(pattern string, fn HandlerFunc) { r.Route(http.MethodPost, pattern, fn) }

// OnEvent registers the consumer of an event type. Delivery is idempotent on
// (function, source, id) through the inbox table in pool.
func (r *Router) OnEvent(t events.Type, pool *pgxpool.Pool, fn EventFunc) {
	r.inbox = pool
	r.events[t] = fn
}

// OnSchedule registers the scheduled job.
func (r *Router) OnSchedule(fn HandlerFunc) { r.schedule = fn }

// Consumes lists the event types this router accepts (sorted).
func (r *Router) Consumes() []events.Type {
	out := make([]events.Type, 0, len(r.events))
	for t := range r.events {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pingType is the event a Knative PingSource sends on each tick.
const pingType = "dev.knative.sources.ping"

// Handle implements handler.FunctionHandler.
func (r *Router) Handle(req handler.Request) (handler.Response, error) {
	ctx := req.Context()
	if events.IsCloudEvent(req.Header) {
		if r.schedule != nil && req.Header.Get("Ce-Type") == pingType {
			setRouteLabel(ctx, "schedule")
			return r.schedule(req)
		}
		return r.handleEvent(req)
	}
	if r.schedule != nil && req.Method == http.MethodPost && Path(req) == "/" && req.Header.Get("X-Connector") != "" {
		setRouteLabel(ctx, "schedule")
		return r.schedule(req)
	}
	return r.handleRoute(req)
}

// handleRoute picks the most specific route for the path — literal segments beat
// parameters, so "/health" wins over "/{session}" whatever the registration order — and
// answers 405 when the path exists only for other methods.
func (r *Router) handleRoute(req handler.Request) (handler.Response, error) {
	path := split(Path(req))
	var allow []string
	var best *route
	var bestParams map[string]string
	bestScore := -1
	for i := range r.routes {
		rt := &r.routes[i]
		params, ok := match(rt.parts, path)
		if !ok {
			continue
		}
		if rt.method != req.Method && !(rt.method == http.MethodGet && req.Method == http.MethodHead) {
			allow = append(allow, rt.method)
			continue
		}
		if score := len(rt.parts) - len(params); score > bestScore {
			best, bestParams, bestScore = rt, params, score
		}
	}
	if best == nil {
		if len(allow) > 0 {
			return handler.Response{}, problem.MethodNotAllowed(allow)
		}
		return handler.Response{}, problem.NotFound("no route " + Path(req) + " in function " + r.name)
	}
	ctx := req.Context()
	setRouteLabel(ctx, best.method+" "+best.pattern)
	if len(bestParams) > 0 {
		req.WithContext(context.WithValue(ctx, paramsKey, bestParams))
	}
	return best.fn(req)
}

func (r *Router) handleEvent(req handler.Request) (handler.Response, error) {
	ctx := req.Context()
	ev, err := events.FromHTTP(ctx, req.Header, req.Body)
	if err != nil {
		setRouteLabel(ctx, "event:invalid")
		return handler.Response{}, EventProblem(err)
	}
	setRouteLabel(ctx, "event:"+ev.Type())
	fn, ok := r.events[events.Type(ev.Type())]
	if !ok {
		return handler.Response{}, problem.New(http.StatusUnprocessableEntity, "event-not-consumed", "Event type not consumed",
			"function "+r.name+" does not consume "+ev.Type()+"; check the routing table in events/")
	}
	outcome, err := inbox.Process(ctx, r.inbox, r.name, ev, func(ctx context.Context, tx pgx.Tx) error {
		return fn(ctx, tx, ev)
	})
	if err != nil {
		return handler.Response{}, err
	}
	h := http.Header{}
	h.Set("X-Event-Outcome", string(outcome))
	// No body: a Knative broker would take a CloudEvent in the reply for a new event.
	return handler.Response{StatusCode: http.StatusOK, Header: h}, nil
}

// EventProblem turns a CloudEvent parse/validation failure into a 400 naming the attributes.
func EventProblem(err error) *problem.Problem {
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		params := make([]problem.InvalidParam, 0, len(ve.Fields))
		for f, reason := range ve.Fields {
			params = append(params, problem.Field(f, reason))
		}
		return problem.Invalid("the CloudEvent is not valid", params...)
	}
	return problem.Invalid("the request is not a readable CloudEvent: " + err.Error())
}

// JSON is a convenience for handlers: a response with a JSON body.
func JSON(status int, v any) (handler.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return handler.Response{}, problem.Internal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return handler.Response{StatusCode: status, Body: b, Header: h}, nil
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func match(pattern, path []string) (map[string]string, bool) {
	if len(pattern) != len(path) {
		return nil, false
	}
	var params map[string]string
	for i, seg := range pattern {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			if path[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[seg[1:len(seg)-1]] = path[i]
			continue
		}
		if seg != path[i] {
			return nil, false
		}
	}
	return params, true
}
