package face

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/problem"
)

// Photos reads stored photos by object name ("bucket/key", as PhotoSubmitted carries it).
type Photos interface {
	Get(ctx context.Context, object string) ([]byte, error)
}

// People answers who a person is, masked (张*, 110***********1234): the only personal
// data face-match ever returns.
type People interface {
	Masked(ctx context.Context, personID string) (name, idNumber string, err error)
}

// Service is face-match's domain.
type Service struct {
	Model  Model
	Pool   *pgxpool.Pool
	Photos Photos
	People People
	Audit  *audit.Log
	Match  Matching
	Lib    *Library
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Problem is the problem+json answer of a quality problem: 422, its code as the type.
func Problem(err error) error {
	var qe *QualityError
	if errors.As(err, &qe) {
		return problem.New(422, "face-"+qe.Code, "The photo cannot be used for face matching", qe.Detail).
			With("quality", qe.Code)
	}
	return err
}

// Verdict is the answer of a 1:1 verification.
type Verdict struct {
	PersonID  string  `json:"personId"`
	Match     bool    `json:"match"`
	Distance  float64 `json:"distance"`
	Threshold float64 `json:"threshold"`
	Model     string  `json:"model"`
	Quality   Quality `json:"quality"`
}

// Verify compares the face in probe with the enrolled card photo of the person (person id,
// or card number of one of their cards).
func (s *Service) Verify(ctx context.Context, personRef string, probe []byte) (Verdict, error) {
	pid, err := s.resolve(ctx, personRef)
	if err != nil {
		return Verdict{}, err
	}
	enrolled, err := s.enrolled(ctx, pid)
	if err != nil {
		return Verdict{}, err
	}
	e, err := s.Model.Embed(probe)
	if err != nil {
		return Verdict{}, Problem(err)
	}
	d := Distance(e.Vector, enrolled)
	return Verdict{PersonID: pid, Match: d <= s.Match.VerifyThreshold, Distance: round4(d),
		Threshold: s.Match.VerifyThreshold, Model: s.Model.Name(), Quality: e.Quality}, nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// resolve turns a person id or a card number into the person id.
func (s *Service) resolve(ctx context.Context, ref string) (string, error) {
	if strings.HasPrefix(ref, "p_") { // the register's person ids (shared/person)
		return ref, nil
	}
	var pid *string
	err := s.Pool.QueryRow(ctx, `SELECT person_id FROM cards WHERE card_no = $1`, ref).Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && pid == nil) {
		return ref, nil // not a card number: take it as a person id
	}
	if err != nil {
		return "", err
	}
	return *pid, nil
}

func (s *Service) enrolled(ctx context.Context, pid string) ([]float32, error) {
	var raw []byte
	var model string
	err := s.Pool.QueryRow(ctx, `SELECT vector, model FROM face_enrolments WHERE person_id = $1`, pid).Scan(&raw, &model)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, problem.New(404, "face-not-enrolled", "No enrolled card photo",
			"this person has no approved card photo enrolled for face matching")
	}
	if err != nil {
		return nil, err
	}
	if model != s.Model.Name() {
		return nil, problem.New(409, "face-model-mismatch", "Enrolled with another model",
			"the card photo was enrolled with model "+model+"; re-enrol it with "+s.Model.Name())
	}
	return decodeVector(raw)
}

// Candidate is one 1:N result.
type Candidate struct {
	PersonID string  `json:"personId"`
	Name     string  `json:"name"`     // masked
	IDNumber string  `json:"idNumber"` // masked
	Distance float64 `json:"distance"`
}

// Search is who asks a 1:N search and why: both go to the audit chain.
type Search struct {
	Actor     string // signed caller's app id
	Channel   string
	Reason    string
	RequestID string
	TopK      int
}

// Identify searches the library for the face in probe and returns up to TopK persons no
// farther than the configured floor, nearest first. Every search is written to the audit
// chain (who, why, how many found), found or not.
func (s *Service) Identify(ctx context.Context, probe []byte, q Search) ([]Candidate, error) {
	q.Reason = strings.TrimSpace(q.Reason)
	if q.Reason == "" || len([]rune(q.Reason)) > 200 {
		return nil, problem.Invalid("a 1:N search needs its reason", problem.Field("reason", "required, at most 200 characters (a case or ticket reference; no personal data)"))
	}
	k := q.TopK
	if k <= 0 || k > s.Match.IdentifyTopK {
		k = s.Match.IdentifyTopK
	}
	e, err := s.Model.Embed(probe)
	if err != nil {
		return nil, Problem(err)
	}
	idx, err := s.Lib.Fresh(ctx)
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, h := range idx.Search(e.Vector, k) {
		if h.Distance > s.Match.IdentifyMaxDistance {
			break
		}
		c := Candidate{PersonID: h.Key, Distance: round4(h.Distance)}
		if s.People != nil {
			if c.Name, c.IDNumber, err = s.People.Masked(ctx, h.Key); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	sum := sha256.Sum256(probe)
	entry := audit.Entry{At: s.now(), Actor: q.Actor, Channel: q.Channel, Action: "face.identify",
		ObjectType: "face-probe", ObjectID: "probe-" + hex.EncodeToString(sum[:8]), RequestID: q.RequestID,
		Detail: map[string]string{"reason": q.Reason, "candidates": strconv.Itoa(len(out)), "topK": strconv.Itoa(k),
			"library": strconv.Itoa(idx.Len()), "model": s.Model.Name()}}
	if s.Audit != nil {
		if _, err := s.Audit.Append(ctx, s.Pool, entry); err != nil {
			return nil, fmt.Errorf("face: audit of the 1:N search: %w", err)
		}
	}
	return out, nil
}

// PreCheck is the machine pre-check of a submitted card photo (PhotoSubmitted): its
// quality and, when usable, its descriptor, kept for the photo audit and for enrolment.
// The latest submission of an application wins.
func (s *Service) PreCheck(ctx context.Context, tx pgx.Tx, eventID string, d events.PhotoSubmittedData) error {
	photo, err := s.Photos.Get(ctx, d.PhotoObject)
	if err != nil {
		return fmt.Errorf("face: reading %s: %w", d.PhotoObject, err)
	}
	e, err := s.Model.Embed(photo)
	var problemCode, detail *string
	var vec []byte
	var qe *QualityError
	switch {
	case errors.As(err, &qe):
		problemCode, detail = &qe.Code, &qe.Detail
	case err != nil:
		return err
	default:
		vec = encodeVector(e.Vector)
	}
	_, err = tx.Exec(ctx, `INSERT INTO face_prechecks (application_id, photo_object, model, problem, detail, score,
			eye_distance, brightness, vector, event_id, checked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (application_id) DO UPDATE SET photo_object = EXCLUDED.photo_object, model = EXCLUDED.model,
			problem = EXCLUDED.problem, detail = EXCLUDED.detail, score = EXCLUDED.score,
			eye_distance = EXCLUDED.eye_distance, brightness = EXCLUDED.brightness, vector = EXCLUDED.vector,
			event_id = EXCLUDED.event_id, checked_at = EXCLUDED.checked_at`,
		d.ApplicationID, d.PhotoObject, s.Model.Name(), problemCode, detail, e.Quality.Score, e.Quality.EyeDistance,
		e.Quality.Brightness, vec, eventID, s.now())
	return err
}

// PreCheckResult is the pre-check of an application's photo, for the photo audit.
type PreCheckResult struct {
	ApplicationID string    `json:"applicationId"`
	Usable        bool      `json:"usable"`
	Problem       string    `json:"problem,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	Quality       *Quality  `json:"quality,omitempty"`
	Model         string    `json:"model"`
	CheckedAt     time.Time `json:"checkedAt"`
}

// PreCheckOf returns the pre-check of an application's latest photo.
func (s *Service) PreCheckOf(ctx context.Context, applicationID string) (PreCheckResult, error) {
	r := PreCheckResult{ApplicationID: applicationID}
	var code, detail *string
	var q Quality
	var score, eye, bright *float32
	err := s.Pool.QueryRow(ctx, `SELECT problem, detail, score, eye_distance, brightness, model, checked_at
		FROM face_prechecks WHERE application_id = $1`, applicationID).Scan(&code, &detail, &score, &eye, &bright, &r.Model, &r.CheckedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, problem.NotFound("no pre-check of this application's photo (yet)")
	}
	if err != nil {
		return r, err
	}
	r.Usable = code == nil
	if code != nil {
		r.Problem, r.Detail = *code, *detail
	} else {
		q = Quality{Score: *score, EyeDistance: float64(*eye), Brightness: float64(*bright)}
		r.Quality = &q
	}
	return r, nil
}

// EnrolApproved enrols the photo of an application whose audit approved it (PhotoAudited):
// the pre-check's descriptor becomes the person's entry in the library. A photo the
// machine could not use is not enrolled (the audit saw why).
func (s *Service) EnrolApproved(ctx context.Context, tx pgx.Tx, eventID string, d events.PhotoAuditedData) error {
	if d.Result != events.AuditApproved {
		return nil
	}
	var pid string
	var object *string
	if err := tx.QueryRow(ctx, `SELECT person_id, photo_object FROM applications WHERE application_id = $1`, d.ApplicationID).Scan(&pid, &object); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("no application " + d.ApplicationID)
		}
		return err
	}
	var vec []byte
	var model string
	var code *string
	err := tx.QueryRow(ctx, `SELECT vector, model, problem FROM face_prechecks WHERE application_id = $1`, d.ApplicationID).Scan(&vec, &model, &code)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && model != s.Model.Name()):
		// The audit overtook the pre-check (or the model changed): check the photo now.
		if object == nil {
			return nil
		}
		photo, err := s.Photos.Get(ctx, *object)
		if err != nil {
			return fmt.Errorf("face: reading %s: %w", *object, err)
		}
		e, err := s.Model.Embed(photo)
		var qe *QualityError
		if errors.As(err, &qe) {
			return nil
		} else if err != nil {
			return err
		}
		vec = encodeVector(e.Vector)
	case err != nil:
		return err
	case code != nil:
		return nil
	}
	return s.enrolTx(ctx, tx, pid, vec, &d.ApplicationID, object, eventID)
}

func (s *Service) enrolTx(ctx context.Context, tx pgx.Tx, pid string, vec []byte, appID, object *string, source string) error {
	_, err := tx.Exec(ctx, `INSERT INTO face_enrolments (person_id, model, vector, application_id, photo_object, source, enrolled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (person_id) DO UPDATE SET model = EXCLUDED.model, vector = EXCLUDED.vector,
			application_id = EXCLUDED.application_id, photo_object = EXCLUDED.photo_object, source = EXCLUDED.source,
			enrolled_at = EXCLUDED.enrolled_at`, pid, s.Model.Name(), vec, appID, object, source, s.now())
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO face_changes (person_id, op) VALUES ($1, 'enrol')`, pid)
	return err
}

// Enrol enrols a photo for a person directly (a counter re-taking a card photo, a
// migration): idempotent on source, the request's idempotency key.
func (s *Service) Enrol(ctx context.Context, personID string, photo []byte, source string) (Quality, error) {
	e, err := s.Model.Embed(photo)
	if err != nil {
		return Quality{}, Problem(err)
	}
	return e.Quality, pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM face_enrolments WHERE person_id = $1 AND source = $2)`, personID, source).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		return s.enrolTx(ctx, tx, personID, encodeVector(e.Vector), nil, nil, source)
	})
}

// EnrolVectors enrols descriptors directly (bulk load of an existing library, tests and
// benchmarks): vecs[i*Dim:] is keys[i]'s.
func (s *Service) EnrolVectors(ctx context.Context, keys []string, vecs []float32, source string) error {
	dim := s.Model.Dim()
	rows := make([][]any, len(keys))
	now := s.now()
	for i, k := range keys {
		rows[i] = []any{k, s.Model.Name(), encodeVector(vecs[i*dim : (i+1)*dim]), source, now}
	}
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"face_enrolments"}, []string{"person_id", "model", "vector", "source", "enrolled_at"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO face_changes (person_id, op) SELECT unnest($1::text[]), 'enrol'`, keys)
		return err
	})
}

// Remove takes a person out of the library; it reports whether they were in it.
func (s *Service) Remove(ctx context.Context, personID string) (bool, error) {
	var removed bool
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM face_enrolments WHERE person_id = $1`, personID)
		if err != nil {
			return err
		}
		removed = tag.RowsAffected() > 0
		if removed {
			_, err = tx.Exec(ctx, `INSERT INTO face_changes (person_id, op) VALUES ($1, 'remove')`, personID)
		}
		return err
	})
	return removed, err
}

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, errors.New("face: stored vector is not float32s")
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
