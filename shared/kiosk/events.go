package kiosk

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/problem"
)

// Event types a kiosk posts (POST /kiosks/{id}/events).
const (
	TypeHeartbeat     = "kiosk.heartbeat"
	TypeCardRead      = "kiosk.card.read"
	TypeSelfCheck     = "kiosk.selfcheck"
	TypeCommandResult = "kiosk.command.result"
)

// MaxBatch is the most events one post may carry.
const MaxBatch = 500

// Event is one event of a kiosk's batch, as the edge-bridge queued it.
type Event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Batch is the body of POST /kiosks/{id}/events.
type Batch struct {
	Events []Event `json:"events"`
}

// Recorded is the answer to a batch.
type Recorded struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// HeartbeatData is the data of kiosk.heartbeat.
type HeartbeatData struct {
	Status       events.KioskStatus `json:"status"`
	Version      string             `json:"version"`
	QueuedEvents *int               `json:"queuedEvents"`
	Components   map[string]string  `json:"components"`
}

// CardReadData is the data of kiosk.card.read as stored: the card number only as its
// blind index, and nothing of the holder.
type CardReadData struct {
	CardNo     string `json:"cardNo,omitempty"` // in: the card number; never stored
	CardNoBIdx string `json:"cardNoBidx,omitempty"`
	CardType   string `json:"cardType"`
	IssueDate  string `json:"issueDate"`
	ExpiryDate string `json:"expiryDate"`
}

// SelfCheckData is the data of kiosk.selfcheck.
type SelfCheckData struct {
	Passed *bool           `json:"passed"`
	Items  []SelfCheckItem `json:"items"`
}

// SelfCheckItem is one check of a self-check.
type SelfCheckItem struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// CommandResultData is the data of kiosk.command.result.
type CommandResultData struct {
	CommandID string `json:"commandId"`
	Status    string `json:"status"` // done, failed
	Detail    string `json:"detail,omitempty"`
}

var (
	componentName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	cardNoShape   = regexp.MustCompile(`^[A-Za-z0-9]{6,20}$`)
	dateShape     = regexp.MustCompile(`^(\d{8}|\d{4}-\d{2}-\d{2})$`)
)

// parsed is an event that passed validation, with the data to store.
type parsed struct {
	id   uuid.UUID
	typ  string
	at   time.Time
	data []byte
	hb   *HeartbeatData
	res  *CommandResultData
}

// decode reads event data; fields outside the type's (a holder's name, say) are dropped.
func decode(raw json.RawMessage, v any) error {
	return json.NewDecoder(bytes.NewReader(raw)).Decode(v)
}

// validate checks the whole batch before anything is written; the problem names the
// index and field of every fault (events[3].data.status).
func (s *Service) validate(b Batch) ([]parsed, error) {
	var params []problem.InvalidParam
	if len(b.Events) == 0 || len(b.Events) > MaxBatch {
		return nil, problem.Invalid("a batch carries 1 to 500 events", problem.Field("events", fmt.Sprintf("must hold 1 to %d events", MaxBatch)))
	}
	out := make([]parsed, 0, len(b.Events))
	for i, e := range b.Events {
		at := fmt.Sprintf("events[%d].", i)
		add := func(f, why string) { params = append(params, problem.Field(at+f, why)) }
		var p parsed
		var err error
		if p.id, err = uuid.Parse(e.ID); err != nil || len(e.ID) != 36 {
			add("id", "must be a UUID")
		}
		if p.at, err = time.Parse(time.RFC3339Nano, e.Time); err != nil {
			add("time", "must be an RFC 3339 time")
		}
		p.typ = e.Type
		if len(e.Data) == 0 || e.Data[0] != '{' {
			add("data", "must be an object")
			out = append(out, p)
			continue
		}
		switch e.Type {
		case TypeHeartbeat:
			var d HeartbeatData
			if err := decode(e.Data, &d); err != nil {
				add("data", "does not decode: "+err.Error())
				break
			}
			if !d.Status.Valid() {
				add("data.status", "must be one of "+strings.Join(d.Status.Values(), ", "))
			}
			if d.Version == "" || len(d.Version) > 64 {
				add("data.version", "is required, at most 64 characters")
			}
			if d.QueuedEvents != nil && *d.QueuedEvents < 0 {
				add("data.queuedEvents", "must not be negative")
			}
			if len(d.Components) > 16 {
				add("data.components", "at most 16 components")
			}
			for name, st := range d.Components {
				if !componentName.MatchString(name) {
					add("data.components", "component names are lower-case words, at most 32 characters")
				} else if st != ComponentOK && st != ComponentFault && st != ComponentAbsent {
					add("data.components."+name, "must be ok, fault or absent")
				}
			}
			p.hb = &d
			p.data, _ = json.Marshal(d)
		case TypeCardRead:
			var d CardReadData
			if err := decode(e.Data, &d); err != nil {
				add("data", "does not decode: "+err.Error())
				break
			}
			if !cardNoShape.MatchString(d.CardNo) {
				add("data.cardNo", "must be 6 to 20 letters or digits")
			}
			if d.CardType == "" || len(d.CardType) > 8 {
				add("data.cardType", "is required, at most 8 characters")
			}
			for f, v := range map[string]string{"issueDate": d.IssueDate, "expiryDate": d.ExpiryDate} {
				if v != "" && !dateShape.MatchString(v) {
					add("data."+f, "must be YYYYMMDD or YYYY-MM-DD")
				}
			}
			if len(params) == 0 && s.CardIndex != nil {
				idx, err := s.CardIndex(strings.ToUpper(d.CardNo))
				if err != nil {
					add("data.cardNo", "cannot be indexed")
					break
				}
				d.CardNoBIdx = hex.EncodeToString(idx)
			}
			d.CardNo = "" // never stored
			p.data, _ = json.Marshal(d)
		case TypeSelfCheck:
			var d SelfCheckData
			if err := decode(e.Data, &d); err != nil {
				add("data", "does not decode: "+err.Error())
				break
			}
			if d.Passed == nil {
				add("data.passed", "is required")
			}
			if len(d.Items) > 64 {
				add("data.items", "at most 64 items")
			}
			for j, it := range d.Items {
				if it.Name == "" || utf8.RuneCountInString(it.Name) > 64 {
					add(fmt.Sprintf("data.items[%d].name", j), "is required, at most 64 characters")
				}
				if utf8.RuneCountInString(it.Detail) > 1000 {
					add(fmt.Sprintf("data.items[%d].detail", j), "at most 1000 characters")
				}
			}
			p.data, _ = json.Marshal(d)
		case TypeCommandResult:
			var d CommandResultData
			if err := decode(e.Data, &d); err != nil {
				add("data", "does not decode: "+err.Error())
				break
			}
			if _, err := uuid.Parse(d.CommandID); err != nil {
				add("data.commandId", "must be a UUID")
			}
			if d.Status != StatusDone && d.Status != StatusFailed {
				add("data.status", "must be done or failed")
			}
			if utf8.RuneCountInString(d.Detail) > 1000 {
				add("data.detail", "at most 1000 characters")
			}
			p.res = &d
			p.data, _ = json.Marshal(d)
		default:
			add("type", "must be one of "+strings.Join([]string{TypeHeartbeat, TypeCardRead, TypeSelfCheck, TypeCommandResult}, ", "))
		}
		out = append(out, p)
	}
	if len(params) > 0 {
		pr := problem.Invalid("the batch was not recorded: every event must be valid", params...)
		pr.Status = 422
		return nil, pr
	}
	return out, nil
}

// Record validates a kiosk's batch whole, then stores it in one transaction: events new
// to this kiosk are inserted in one statement (a repeated event id is a duplicate and
// changes nothing), and only those apply — the newest heartbeat moves the kiosk's state,
// faults open alert episodes, command results settle their commands. c must be kiosk id
// itself, registered under the key it signed with.
func (s *Service) Record(ctx context.Context, c Caller, id string, b Batch) (Recorded, error) {
	evs, err := s.validate(b)
	if err != nil {
		return Recorded{}, err
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return Recorded{}, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := s.AuthorizeKiosk(ctx, tx, c, id, true); err != nil {
		return Recorded{}, err
	}
	ids := make([]string, len(evs))
	types := make([]string, len(evs))
	ats := make([]time.Time, len(evs))
	datas := make([]string, len(evs))
	for i, e := range evs {
		ids[i], types[i], ats[i], datas[i] = e.id.String(), e.typ, e.at, string(e.data)
	}
	rows, err := tx.Query(ctx, `INSERT INTO kiosk_events (kiosk_id, event_id, type, at, data)
		SELECT $1, e.id, e.type, e.at, e.data::jsonb FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[])
			AS e(id, type, at, data)
		ON CONFLICT DO NOTHING RETURNING event_id::text`, id, ids, types, ats, datas)
	if err != nil {
		return Recorded{}, err
	}
	fresh := map[string]bool{}
	for rows.Next() {
		var eid string
		if err := rows.Scan(&eid); err != nil {
			rows.Close()
			return Recorded{}, err
		}
		fresh[eid] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Recorded{}, err
	}
	var applied []parsed
	for _, e := range evs {
		if fresh[e.id.String()] {
			applied = append(applied, e)
			delete(fresh, e.id.String()) // the same id twice in one batch applies once
		}
	}
	if err := s.apply(ctx, tx, id, applied); err != nil {
		return Recorded{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Recorded{}, err
	}
	return Recorded{Accepted: len(applied), Duplicates: len(evs) - len(applied)}, nil
}

// apply makes the state changes of the events just inserted, in batch order.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, id string, evs []parsed) error {
	var beats []parsed
	var results []parsed
	for _, e := range evs {
		switch {
		case e.hb != nil:
			beats = append(beats, e)
		case e.res != nil:
			results = append(results, e)
		}
	}
	if len(beats) > 0 {
		if err := s.applyHeartbeats(ctx, tx, id, beats); err != nil {
			return err
		}
	}
	for _, r := range results {
		if err := s.settleCommand(ctx, tx, id, r.res, r.at); err != nil {
			return err
		}
	}
	return nil
}

// applyHeartbeats moves the kiosk's state to its newest heartbeat (never back to an older
// one), ends an offline episode, and walks the heartbeats in time order to open a fault
// episode (one alert) for every component that turns faulty and close it when it recovers.
func (s *Service) applyHeartbeats(ctx context.Context, tx pgx.Tx, id string, beats []parsed) error {
	sort.SliceStable(beats, func(i, j int) bool { return beats[i].at.Before(beats[j].at) })
	newest := beats[len(beats)-1]
	comps, _ := json.Marshal(orEmpty(newest.hb.Components))
	var queued *int
	if newest.hb.QueuedEvents != nil {
		queued = newest.hb.QueuedEvents
	}
	tag, err := tx.Exec(ctx, `UPDATE kiosks SET last_seen_at = $2, last_status = $3, version = $4, components = $5,
			queued_events = $6, reader_present = coalesce(($5::jsonb ->> 'reader') = 'ok', reader_present)
		WHERE kiosk_id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)`,
		id, newest.at, string(newest.hb.Status), newest.hb.Version, comps, queued)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nil // all older than what the kiosk already reported: history only
	}
	if _, err := tx.Exec(ctx, `DELETE FROM kiosk_faults WHERE kiosk_id = $1 AND component = $2`, id, ComponentOffline); err != nil {
		return err
	}
	open := map[string]bool{}
	rows, err := tx.Query(ctx, `SELECT component FROM kiosk_faults WHERE kiosk_id = $1 AND component <> $2`, id, ComponentOffline)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		open[c] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	was := maps(open)
	var alerts []alert
	for _, hb := range beats {
		for name, st := range hb.hb.Components {
			switch {
			case st == ComponentFault && !open[name]:
				open[name] = true
				alerts = append(alerts, alert{component: name, episode: faultEpisode(id, name, hb.id), at: hb.at})
			case st != ComponentFault && open[name]:
				delete(open, name)
			}
		}
	}
	// Persist the open set: close recovered components, open new ones.
	var closed []string
	for c := range was {
		if !open[c] {
			closed = append(closed, c)
		}
	}
	if len(closed) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM kiosk_faults WHERE kiosk_id = $1 AND component = ANY($2)`, id, closed); err != nil {
			return err
		}
	}
	for _, a := range alerts {
		if !open[a.component] || was[a.component] {
			// Opened and closed within the batch: the episode happened, its alert is sent,
			// no row stays open.
			if err := s.raise(ctx, tx, id, a, false); err != nil {
				return err
			}
			continue
		}
		if err := s.raise(ctx, tx, id, a, true); err != nil {
			return err
		}
	}
	return nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SelfCheck is a recorded self-check.
type SelfCheck struct {
	EventID string          `json:"eventId"`
	At      time.Time       `json:"at"`
	Passed  bool            `json:"passed"`
	Items   []SelfCheckItem `json:"items"`
}

// SelfChecks lists a kiosk's self-checks, newest first (at most limit).
func (s *Service) SelfChecks(ctx context.Context, admin Admin, id string, limit int) ([]SelfCheck, error) {
	if _, err := s.Get(ctx, admin, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.DB.Query(ctx, `SELECT event_id::text, at, data FROM kiosk_events WHERE kiosk_id = $1 AND type = $2
		ORDER BY at DESC LIMIT $3`, id, TypeSelfCheck, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SelfCheck{}
	for rows.Next() {
		var sc SelfCheck
		var d SelfCheckData
		if err := rows.Scan(&sc.EventID, &sc.At, &d); err != nil {
			return nil, err
		}
		sc.Passed, sc.Items = d.Passed != nil && *d.Passed, d.Items
		if sc.Items == nil {
			sc.Items = []SelfCheckItem{}
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}
