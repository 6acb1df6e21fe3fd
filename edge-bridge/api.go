package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sscard/platform/edge-bridge/uplink"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/problem"
)

// The local API serves the kiosk's own UI on loopback:
//
//	GET  /status                     the daemon's state
//	GET  /events                     card events as server-sent events
//	GET  /cards/{cardNo}/blocked     the local blacklist's answer (works offline)
//	POST /actions/verify-face        {readId, photo}: face-match /verify for the card read
//	POST /actions/report-loss        {readId, type, reason}: loss-report for the card read
//	POST /actions/apply              {readId, ...application}: card-apply /applications
//
// The holder's name and ID number leave this process only masked. Requests must name a
// loopback host (no DNS rebinding from a web page) and actions must be JSON.
func (b *bridge) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", b.status)
	mux.HandleFunc("GET /events", b.stream)
	mux.HandleFunc("GET /cards/{cardNo}/blocked", b.blocked)
	mux.HandleFunc("POST /actions/verify-face", b.action(b.verifyFace))
	mux.HandleFunc("POST /actions/report-loss", b.action(b.reportLoss))
	mux.HandleFunc("POST /actions/apply", b.action(b.apply))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if ip := net.ParseIP(strings.Trim(host, "[]")); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			writeProblem(w, problem.New(http.StatusForbidden, "forbidden", "Forbidden", "the local API answers loopback hosts only"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p *problem.Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func (b *bridge) status(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	paused, sc := b.paused, b.selfCheck
	b.mu.Unlock()
	blv, synced := b.bl.Version()
	writeJSON(w, http.StatusOK, map[string]any{
		"kioskId": b.cfg.kioskID, "version": version, "paused": paused, "reader": b.watcher.Status(),
		"components": b.components(), "queuedEvents": b.events.Len(), "queuedUploads": b.uploads.Len(),
		"refusedEvents": b.dead.Len(), "uplink": b.fwd.State(), "selfCheck": sc,
		"blacklist": map[string]any{"version": blv, "synced": synced},
	})
}

// cardView is what the UI hears of a card read: no full name or ID number.
func cardView(readerName string, in *inserted, blocked bool, e uplink.BlacklistEntry, blv int64, paused bool) map[string]any {
	c := in.card
	return map[string]any{"reader": readerName, "readId": in.readID, "cardNo": c.CardNo, "cardType": c.CardType,
		"name": mask.Name(c.Name), "idNumber": mask.IDNumber(c.SSN), "expiryDate": c.Public().ExpiryDate,
		"expired": c.Expired(time.Now()), "blocked": blocked, "blockStatus": e.Status, "blacklistVersion": blv,
		"paused": paused}
}

func (b *bridge) blocked(w http.ResponseWriter, r *http.Request) {
	no := r.PathValue("cardNo")
	blocked, e, v, err := b.bl.Check(no)
	if err != nil {
		writeProblem(w, problem.Unavailable("local-blacklist", 5*time.Second, err))
		return
	}
	_, synced := b.bl.Version()
	writeJSON(w, http.StatusOK, map[string]any{"cardNo": no, "blocked": blocked, "status": e.Status,
		"statusCode": e.StatusCode, "blacklistVersion": v, "synced": synced})
}

// stream sends card events as server-sent events until the client leaves.
func (b *bridge) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeProblem(w, problem.Internal(nil))
		return
	}
	ch := b.hub.subscribe()
	defer b.hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": edge-bridge card events\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			_, _ = w.Write(msg)
			fl.Flush()
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		}
	}
}

// action wraps a UI action: JSON only, refused while the service is paused, the
// platform's answer passed back as it came (status and body).
func (b *bridge) action(f func(ctx context.Context, in map[string]any, card *inserted) (string, callsign.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			writeProblem(w, problem.Invalid("actions take application/json", problem.Field("Content-Type", "must be application/json")))
			return
		}
		if b.isPaused() {
			writeProblem(w, problem.New(http.StatusServiceUnavailable, "paused", "Service paused", "the kiosk's service is paused by its operator"))
			return
		}
		var in map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&in); err != nil {
			writeProblem(w, problem.Invalid("the body is not a JSON object", problem.Field("body", err.Error())))
			return
		}
		readID, _ := in["readId"].(string)
		card := b.cardByRead(readID)
		if card == nil {
			writeProblem(w, problem.Invalid("no card with this read id is in a reader", problem.Field("readId", "must name the current card read")))
			return
		}
		function, req, err := f(r.Context(), in, card)
		if err != nil {
			writeProblem(w, problem.Invalid(err.Error()))
			return
		}
		resp, err := b.client.Caller(function).Do(r.Context(), req)
		if err != nil {
			writeProblem(w, problem.Unavailable("platform", 5*time.Second, err))
			return
		}
		if function == "face-match" && resp.StatusCode == http.StatusOK {
			var m struct {
				Match bool `json:"match"`
			}
			if json.Unmarshal(resp.Body, &m) == nil && m.Match {
				b.mu.Lock()
				card.faceVerified = true
				b.mu.Unlock()
			}
		}
		ct := resp.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(resp.Body)
	}
}

func (b *bridge) cardByRead(id string) *inserted {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.cards {
		if c.readID == id && id != "" {
			return c
		}
	}
	return nil
}

func jsonRequest(method, path string, body any) (callsign.Request, error) {
	raw, err := json.Marshal(body)
	return callsign.Request{Method: method, Path: path, Body: raw, ContentType: "application/json"}, err
}

// verifyFace asks face-match whether the person at the kiosk is the card's holder.
func (b *bridge) verifyFace(_ context.Context, in map[string]any, c *inserted) (string, callsign.Request, error) {
	photo, _ := in["photo"].(string)
	if photo == "" {
		return "", callsign.Request{}, fmt.Errorf("photo (base64 JPEG) is required")
	}
	r, err := jsonRequest(http.MethodPost, "/verify", map[string]any{"cardNo": c.card.CardNo, "idNumber": c.card.SSN,
		"photo": photo, "channel": "kiosk", "kioskId": b.cfg.kioskID})
	return "face-match", r, err
}

// reportLoss reports the card lost; a formal loss needs the holder verified by face first.
func (b *bridge) reportLoss(_ context.Context, in map[string]any, c *inserted) (string, callsign.Request, error) {
	typ, _ := in["type"].(string)
	if typ != "temporary" && typ != "formal" {
		return "", callsign.Request{}, fmt.Errorf("type must be temporary or formal")
	}
	reason, _ := in["reason"].(string)
	b.mu.Lock()
	verified := c.faceVerified
	b.mu.Unlock()
	r, err := jsonRequest(http.MethodPost, "/cards/"+c.card.CardNo+"/loss", map[string]any{"type": typ,
		"channel": "kiosk", "reason": reason, "identityVerified": verified})
	return "loss-report", r, err
}

// apply submits a card application for the holder of the card read (a replacement or
// renewal is applied for with the card in hand); the UI supplies the rest of the form.
func (b *bridge) apply(_ context.Context, in map[string]any, c *inserted) (string, callsign.Request, error) {
	delete(in, "readId")
	in["channel"], in["kioskId"] = "kiosk", b.cfg.kioskID
	if _, ok := in["idNumber"]; !ok {
		in["idNumber"] = c.card.SSN
	}
	if _, ok := in["name"]; !ok {
		in["name"] = c.card.Name
	}
	r, err := jsonRequest(http.MethodPost, "/applications", in)
	return "card-apply", r, err
}

// hub fans server-sent events out to the UI's streams; a stream that cannot keep up is
// closed rather than allowed to hold the reader back.
type hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func newHub() *hub { return &hub{subs: map[chan []byte]struct{}{}} }

func (h *hub) subscribe() chan []byte {
	ch := make(chan []byte, 32)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) send(event string, data any) {
	d, _ := json.Marshal(data)
	msg := []byte("event: " + event + "\ndata: " + string(d) + "\n\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- msg:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
