package reconcile

import (
	"archive/zip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/envconf"
)

// Channels a run reconciles: the three payment channels against the ledger, and "cards"
// (银社对账: the bank's card statuses against the platform's cards).
var Channels = []string{"wechat", "alipay", "unionpay", "cards"}

// Trigger says what started a run.
type Trigger string

const (
	TriggerSchedule Trigger = "schedule" // cron-connector's empty POST
	TriggerPing     Trigger = "ping"     // Knative PingSource CloudEvent
	TriggerManual   Trigger = "manual"   // a signed staff call
)

// Config is the job's configuration.
type Config struct {
	// Channels run by the schedule (default all of Channels).
	Channels []string
	// PendingMinutes: an unmatched row in the last minutes of the day is held as
	// pending for the next run (cross-day settlement), not reported (default 10).
	PendingMinutes int
	// NotifyMax caps the DiscrepancyFound events of one run; the completed event carries
	// the totals (default 100: finance is told, not flooded).
	NotifyMax int
	// CardCodes map the bank file's status codes (AAZ502).
	CardCodes card.Codes
	// TempDir holds statement files while a run reads them ("" = the system's).
	TempDir string
	// SpillRows: a day whose ledger holds more rows than this is joined in partitions
	// spilled to TempDir (grace hash join), one partition in memory at a time.
	SpillRows int
}

// Service runs reconciliations and answers for their results.
type Service struct {
	Pool    *pgxpool.Pool
	Objects Objects
	Audit   *audit.Log
	Channel RefundChannel
	Config  Config
	// Hook, when set, is called between the stages of a run ("matched", "reported"); tests
	// use it to stop a run midway.
	Hook func(stage string)
}

// Errors a caller maps to answers.
var (
	ErrRunInProgress = errors.New("reconcile: a run of this channel and date is in progress")
	ErrNoStatement   = errors.New("reconcile: no statement file for this channel and date")
	ErrDigest        = errors.New("reconcile: a statement file does not match its stated digest")
	ErrNotFound      = errors.New("reconcile: not found")
)

// InputError names a request field that is not acceptable.
type InputError struct{ Field, Reason string }

func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// RunRequest starts a run.
type RunRequest struct {
	Channel   string
	Date      string // yyyy-mm-dd, China business date
	Trigger   Trigger
	Actor     string // staff app id, or "system"
	RequestID string
}

// Input is one file a run read, as recorded in its manifest.
type Input struct {
	Role       string      `json:"role"` // statement | his
	Key        string      `json:"key"`
	Size       int64       `json:"size"`
	ETag       string      `json:"etag"`
	SHA256     string      `json:"sha256"`
	Stated     string      `json:"statedDigest,omitempty"`
	Report     ParseReport `json:"report"`
	DigestOK   bool        `json:"digestOk"`
	ControlsOK bool        `json:"controlsOk"`
}

// Manifest is what a run read.
type Manifest struct {
	Inputs      []Input `json:"inputs"`
	LedgerRows  int64   `json:"ledgerRows"`
	CarriedRows int     `json:"carriedRows"`
	Spilled     bool    `json:"spilled"`
}

func (r RunRequest) validate() (time.Time, error) {
	if !slices.Contains(Channels, r.Channel) {
		return time.Time{}, &InputError{"channel", "want one of " + strings.Join(Channels, ", ")}
	}
	d, err := ParseDate(r.Date)
	if err != nil {
		return time.Time{}, &InputError{"date", "want a business date yyyy-mm-dd"}
	}
	if d.After(time.Now().In(China)) {
		return time.Time{}, &InputError{"date", "a business date that has not begun cannot be reconciled"}
	}
	return d, nil
}

func lockKey(channel, date string) string { return "reconcile:" + channel + ":" + date }

// Run reconciles one channel and date: it takes the (channel, date) lock, records a new
// attempt, matches, writes the reports and publishes the results as current in one
// transaction. A run that fails is recorded as failed with its reason.
func (s *Service) Run(ctx context.Context, req RunRequest) (*Run, error) {
	day, err := req.validate()
	if err != nil {
		return nil, err
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	// A session lock on a connection of our own: if the instance dies, Postgres ends the
	// session and the lock goes with it.
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, lockKey(req.Channel, req.Date)).Scan(&locked); err != nil {
		return nil, err
	}
	if !locked {
		return nil, ErrRunInProgress
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, lockKey(req.Channel, req.Date))
	}()
	// Holding the lock, any run still marked running was left by an instance that died.
	if _, err := conn.Exec(ctx, `UPDATE recon_runs SET status = 'failed', finished_at = now(),
		error = 'interrupted: the instance running it stopped before it finished'
		WHERE channel = $1 AND biz_date = $2 AND status = 'running'`, req.Channel, req.Date); err != nil {
		return nil, err
	}
	var attempt int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(attempt), 0) + 1 FROM recon_runs WHERE channel = $1 AND biz_date = $2`,
		req.Channel, req.Date).Scan(&attempt); err != nil {
		return nil, err
	}
	runID := fmt.Sprintf("RUN-%s-%s-%d", strings.ToUpper(req.Channel), day.Format("20060102"), attempt)
	if _, err := conn.Exec(ctx, `INSERT INTO recon_runs (run_id, channel, biz_date, attempt, status, trigger, requested_by)
		VALUES ($1, $2, $3, $4, 'running', $5, $6)`, runID, req.Channel, req.Date, attempt, string(req.Trigger), req.Actor); err != nil {
		return nil, err
	}
	res, man, threeWay, err := s.match(ctx, req.Channel, day)
	if err == nil {
		s.hook("matched")
		err = s.publish(ctx, req, runID, day, res, man, threeWay)
	}
	if err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `UPDATE recon_runs SET status = 'failed', finished_at = now(), error = $2,
			manifest = $3 WHERE run_id = $1 AND status = 'running'`, runID, truncate(err.Error(), 500), man)
		run, _ := s.GetRun(context.WithoutCancel(ctx), runID)
		return run, err
	}
	return s.GetRun(ctx, runID)
}

func (s *Service) hook(stage string) {
	if s.Hook != nil {
		s.Hook(stage)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// spooled is a statement file copied to local disk (the zip reader needs random access,
// and the digest must be known before the rows count).
type spooled struct {
	in   Input
	file *os.File
}

func (s *Service) spool(ctx context.Context, role, key string) (*spooled, error) {
	obj, err := s.Objects.Get(ctx, StatementBucket, key)
	if err != nil {
		return nil, fmt.Errorf("statement %s: %w", key, err)
	}
	defer obj.Body.Close()
	f, err := os.CreateTemp(s.Config.TempDir, "reconcile-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // gone when closed, whatever happens to the process
	h256, h1 := sha256.New(), sha1.New()
	n, err := io.Copy(io.MultiWriter(f, h256, h1), obj.Body)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("statement %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	in := Input{Role: role, Key: key, Size: n, ETag: obj.ETag, SHA256: hex.EncodeToString(h256.Sum(nil)), DigestOK: true}
	if v := obj.Meta["sha256"]; v != "" {
		in.Stated, in.DigestOK = "sha256:"+v, strings.EqualFold(v, in.SHA256)
	} else if v := obj.Meta["sha1"]; v != "" {
		in.Stated, in.DigestOK = "sha1:"+v, strings.EqualFold(v, hex.EncodeToString(h1.Sum(nil)))
	}
	return &spooled{in: in, file: f}, nil
}

// match reads every input of (channel, day) and joins them.
func (s *Service) match(ctx context.Context, channel string, day time.Time) (*Result, *Manifest, bool, error) {
	date := day.Format(time.DateOnly)
	man := &Manifest{}
	keys, err := s.Objects.List(ctx, StatementBucket, channel+"/"+date+"/")
	if err != nil {
		return nil, man, false, err
	}
	if len(keys) == 0 {
		return nil, man, false, ErrNoStatement
	}
	var hisKeys []string
	if channel != "cards" {
		if hisKeys, err = s.Objects.List(ctx, StatementBucket, "his/"+date+"/"); err != nil {
			return nil, man, false, err
		}
	}
	var files []*spooled
	defer func() {
		for _, f := range files {
			f.file.Close()
		}
	}()
	for _, k := range keys {
		f, err := s.spool(ctx, "statement", k)
		if err != nil {
			return nil, man, false, err
		}
		files = append(files, f)
	}
	for _, k := range hisKeys {
		f, err := s.spool(ctx, "his", k)
		if err != nil {
			return nil, man, false, err
		}
		files = append(files, f)
	}
	for _, f := range files {
		if !f.in.DigestOK {
			man.Inputs = append(man.Inputs, f.in)
			return nil, man, false, fmt.Errorf("%w: %s", ErrDigest, f.in.Key)
		}
	}
	var expect int64
	if err := s.Pool.QueryRow(ctx, ledgerCountSQL(channel), channel, date).Scan(&expect); err != nil {
		return nil, man, false, err
	}
	carried, err := s.carried(ctx, channel, day)
	if err != nil {
		return nil, man, false, err
	}
	man.CarriedRows = len(carried)
	pendingFrom := int64(0)
	if channel != "cards" {
		pendingFrom = DayStart(day) + 86400 - int64(s.pendingMinutes())*60
	}
	opt := Options{ExpectRows: int(expect), PendingFrom: pendingFrom, ThreeWay: len(hisKeys) > 0, StatusOnly: channel == "cards"}
	in := &runInputs{s: s, channel: channel, day: day, files: files, carried: carried, man: man}
	var res *Result
	if s.Config.SpillRows > 0 && expect > int64(s.Config.SpillRows) {
		man.Spilled = true
		res, err = joinSpilled(ctx, opt, in, s.Config.TempDir, int(expect/int64(s.Config.SpillRows))+1)
	} else {
		res, err = joinInMemory(ctx, opt, in)
	}
	return res, man, opt.ThreeWay, err
}

func (s *Service) pendingMinutes() int {
	if s.Config.PendingMinutes > 0 {
		return s.Config.PendingMinutes
	}
	return 10
}

// runInputs feeds a join: the build side (ledger, carried platform rows, HIS) and the
// probe side (statements, carried channel rows).
type runInputs struct {
	s       *Service
	channel string
	day     time.Time
	files   []*spooled
	carried []carriedRow
	man     *Manifest
}

func (in *runInputs) build(ctx context.Context, newFeeder func(Side) Emitter) error {
	n, err := in.s.streamLedger(ctx, in.channel, in.day, newFeeder)
	if err != nil {
		return err
	}
	in.man.LedgerRows = n
	emitCarried(in.carried, SidePlatform, newFeeder(SidePlatform))
	for _, f := range in.files {
		if f.in.Role != "his" {
			continue
		}
		if _, err := f.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		rep, err := ParseHIS(f.file, in.channel, newFeeder(SideHIS))
		if err != nil {
			return fmt.Errorf("HIS export %s: %w", f.in.Key, err)
		}
		in.record(f, rep)
	}
	return nil
}

func (in *runInputs) probe(ctx context.Context, newFeeder func(Side) Emitter) error {
	for _, f := range in.files {
		if f.in.Role != "statement" {
			continue
		}
		if _, err := f.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		out := newFeeder(SideChannel)
		var rep ParseReport
		var err error
		switch in.channel {
		case "wechat":
			rep, err = ParseWeChat(f.file, out)
		case "alipay":
			var zr *zip.Reader
			if zr, err = zip.NewReader(f.file, f.in.Size); err == nil {
				rep, err = ParseAlipayZip(zr, out)
			}
		case "unionpay":
			rep, err = ParseUnionPayZM(f.file, in.day, out)
		case "cards":
			rep, err = ParseCardStatus(f.file, in.s.cardCodes(), out)
		}
		if err != nil {
			return fmt.Errorf("statement %s: %w", f.in.Key, err)
		}
		in.record(f, rep)
	}
	emitCarried(in.carried, SideChannel, newFeeder(SideChannel))
	return nil
}

func (in *runInputs) record(f *spooled, rep ParseReport) {
	f.in.Report = rep
	f.in.ControlsOK = rep.Control.OK
	in.man.Inputs = append(in.man.Inputs, f.in)
}

func (s *Service) cardCodes() card.Codes {
	if s.Config.CardCodes != nil {
		return s.Config.CardCodes
	}
	return card.DefaultCodes()
}

// joinInMemory runs the three phases on one Join.
func joinInMemory(ctx context.Context, opt Options, in *runInputs) (*Result, error) {
	j := NewJoin(opt)
	defer j.Close()
	if err := phase(ctx, j, SidePlatform, in.build); err != nil {
		return nil, err
	}
	if err := phase(ctx, j, SideChannel, in.probe); err != nil {
		return nil, err
	}
	return j.Finish(), nil
}

// phase runs one phase, closing every feeder it handed out and the phase itself whatever
// happens, so no goroutine is left behind.
func phase(ctx context.Context, j *Join, p Side, feed func(context.Context, func(Side) Emitter) error) error {
	var feeders []*Feeder
	j.Begin(p)
	err := feed(ctx, func(side Side) Emitter {
		f := j.Feeder(side)
		feeders = append(feeders, f)
		return f
	})
	for _, f := range feeders {
		f.Close()
	}
	j.End()
	return err
}

func ledgerCountSQL(channel string) string {
	if channel == "cards" {
		return `SELECT count(*) FROM cards WHERE $1::text IS NOT NULL AND $2::date IS NOT NULL`
	}
	return `SELECT count(*) FROM payment_ledger WHERE channel = $1 AND biz_date = $2`
}

// streamLedger copies the platform side out of Postgres in the plain format and parses
// it as it arrives, in parallel.
func (s *Service) streamLedger(ctx context.Context, channel string, day time.Time, newFeeder func(Side) Emitter) (int64, error) {
	if !slices.Contains(Channels, channel) { // the statement below is built from it
		return 0, fmt.Errorf("unknown channel %q", channel)
	}
	q := fmt.Sprintf(`COPY (SELECT txn_no, amount_fen, status, extract(epoch FROM paid_at)::bigint, merchant_id, kind
		FROM payment_ledger WHERE channel = '%s' AND biz_date = '%s') TO STDOUT (FORMAT csv)`, channel, day.Format(time.DateOnly))
	if channel == "cards" {
		q = `COPY (SELECT card_no, 0, status, extract(epoch FROM status_since)::bigint FROM cards) TO STDOUT (FORMAT csv)`
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	pr, pw := io.Pipe()
	copyErr := make(chan error, 1)
	go func() {
		_, err := conn.Conn().PgConn().CopyTo(ctx, pw, q)
		pw.CloseWithError(err)
		copyErr <- err
	}()
	rep, err := FeedPlain(pr, 0, func() Emitter { return newFeeder(SidePlatform) })
	pr.CloseWithError(io.ErrClosedPipe)
	if cerr := <-copyErr; cerr != nil && err == nil {
		err = cerr
	}
	if err == nil && len(rep.Malformed) > 0 {
		err = fmt.Errorf("ledger row unreadable: %v", rep.Malformed[0])
	}
	return rep.Rows, err
}

// carriedRow is a pending row of the previous date's current run.
type carriedRow struct {
	side     Side
	key      string
	merchant string
	kind     Kind
	status   Status
	fen      int64
	time     int64
}

func (s *Service) carried(ctx context.Context, channel string, day time.Time) ([]carriedRow, error) {
	rows, err := s.Pool.Query(ctx, `SELECT d.side, d.txn_key, d.merchant, d.kind, d.platform_fen, d.channel_fen,
			d.platform_status, d.channel_status, coalesce(extract(epoch FROM d.txn_time)::bigint, 0)
		FROM recon_current c JOIN recon_discrepancies d ON d.run_id = c.run_id
		WHERE c.channel = $1 AND c.biz_date = $2 AND d.class = 'pending' ORDER BY d.seq`,
		channel, day.AddDate(0, 0, -1).Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	var out []carriedRow
	for rows.Next() {
		var side, kind, ps, cs string
		var r carriedRow
		var pf, cf int64
		if err := rows.Scan(&side, &r.key, &r.merchant, &kind, &pf, &cf, &ps, &cs, &r.time); err != nil {
			return nil, err
		}
		r.kind = KindPay
		if kind == "refund" {
			r.kind = KindRefund
		}
		if side == "channel" {
			r.side, r.fen = SideChannel, cf
			r.status, _ = ParseStatus(cs)
		} else {
			r.side, r.fen = SidePlatform, pf
			r.status, _ = ParseStatus(ps)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func emitCarried(rows []carriedRow, side Side, out Emitter) {
	for _, c := range rows {
		if c.side != side {
			continue
		}
		out.Emit(&Row{Key: []byte(c.key), Merchant: []byte(c.merchant), Kind: c.kind, Status: c.status, AmountFen: c.fen,
			Time: c.time, Carried: true})
	}
}

// RefundNo is the refund number of a discrepancy: derived from its identity (channel
// and transaction key), never from the run, so reruns find the same one.
func RefundNo(channel, key string) string {
	h := sha256.Sum256([]byte("reconcile-refund\x00" + channel + "\x00" + key))
	return "RF" + strings.ToUpper(hex.EncodeToString(h[:12]))
}

// LoadConfig reads the job's settings (defaults in brackets):
//
//	reconcile_channels         channels the schedule runs [wechat,alipay,unionpay,cards]
//	reconcile_pending_minutes  minutes before midnight whose unmatched rows wait for the
//	                           next day's run [10]
//	reconcile_notify_max       DiscrepancyFound events per run at most [100]
//	reconcile_spill_rows       ledger rows above which a day is joined in spilled parts
//	                           [15000000]
//	card_status_codes          the bank file's status codes, as shared/card reads them
func LoadConfig(e *envconf.Env) (Config, error) {
	c := Config{
		PendingMinutes: e.Int("reconcile_pending_minutes", 10, 0, 720),
		NotifyMax:      e.Int("reconcile_notify_max", 100, 1, 100000),
		SpillRows:      e.Int("reconcile_spill_rows", 15_000_000, 1000, 1<<31-1),
	}
	for _, ch := range strings.Split(e.String("reconcile_channels", strings.Join(Channels, ",")), ",") {
		ch = strings.TrimSpace(ch)
		if !slices.Contains(Channels, ch) {
			e.Fail("reconcile_channels", "unknown channel "+strconv.Quote(ch)+"; want some of "+strings.Join(Channels, ","))
			continue
		}
		c.Channels = append(c.Channels, ch)
	}
	codes, err := card.ParseCodes(e.String("card_status_codes", ""))
	if err != nil {
		e.Fail("card_status_codes", err.Error())
	}
	c.CardCodes = codes
	return c, e.Err()
}
