//go:build integration

package application

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/tests/testenv"
)

type fixture struct {
	svc  *Service
	pool *pgxpool.Pool
	s3   *s3.Client
	env  *testenv.Env
}

func s3Client(t *testing.T, env *testenv.Env, endpoint string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(env.Secret(t, "s3-access-key"), env.Secret(t, "s3-secret-key"), ""),
		RetryMaxAttempts: 1})
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	kr, err := pii.FromSecrets(env.Secrets, pii.PGStore{DB: pool})
	if err != nil {
		t.Fatal(err)
	}
	c := s3Client(t, env, env.Vars["s3_endpoint"])
	// make test's bootstrap creates the buckets; create it here too so the package's tests
	// also run against bare services (an existing bucket is fine).
	_, _ = c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(PhotoBucket)})
	svc := &Service{Pool: pool, People: person.NewStore(pool, kr), Sealer: kr, Audit: &audit.Log{},
		Photos: S3Store{Client: c, Bucket: PhotoBucket}, Factory: SimFactory{}}
	return &fixture{svc: svc, pool: pool, s3: c, env: env}
}

// randomResidentID is a valid resident ID with a random birth date and order.
func randomResidentID(t testing.TB) string {
	d := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(20000))
	body := fmt.Sprintf("110105%s%03d", d.Format("20060102"), rand.IntN(1000))
	c, _ := identity.CheckChar(body)
	return body + string(c)
}

func statusOf(err error) int {
	if p, ok := problem.As(err); ok {
		return p.Status
	}
	return 0
}

// storeDown is the fixture's service with its photo store at an address nobody listens on.
func (f *fixture) storeDown(t *testing.T) *Service {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	down := *f.svc
	down.Photos = S3Store{Client: s3Client(t, f.env, closed), Bucket: PhotoBucket}
	return &down
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCardApply_JourneyFromApplicationToActivatedCard(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	idn := randomResidentID(t)
	v, err := f.svc.Apply(ctx, Request{IDNumber: idn, Name: "欧阳娜娜", Phone: "13812345678", Channel: "h5"}, Actor{RequestID: "req-apply-1"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != Submitted || v.Name != "欧阳**" || strings.Contains(v.IDNumber, idn[3:14]) || v.Phone != "138****5678" {
		t.Fatalf("apply: %+v", v)
	}
	// The personal details are sealed: no clear name or number in the row.
	var sealed string
	_ = f.pool.QueryRow(ctx, `SELECT details_enc FROM applications WHERE application_id = $1`, v.ApplicationID).Scan(&sealed)
	if strings.Contains(sealed, "欧阳") || strings.Contains(sealed, "13812345678") {
		t.Fatal("details stored in clear")
	}
	// Rejected photo, then a new one, then approved.
	if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{ContentType: "image/jpeg", Body: withEXIF(jpegOf(t, 358, 441))}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditRejected, "背景不是白色", Actor{ID: "op-1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := f.svc.Get(ctx, v.ApplicationID, false)
	if got.Status != PhotoRejected || got.PhotoReason != "背景不是白色" {
		t.Fatalf("after reject: %+v", got)
	}
	if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 413, 579)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-1"}); err != nil {
		t.Fatal(err)
	}
	// Activation before delivery is an illegal transition naming the state.
	if _, err := f.svc.Activate(ctx, v.ApplicationID, Actor{}); statusOf(err) != 409 {
		t.Fatalf("early activation: want 409, got %v", err)
	}
	for i, want := range []Status{InProduction, Mailed, Delivered} {
		if _, err := f.svc.Advance(ctx, 10, Actor{}); err != nil {
			t.Fatal(err)
		}
		got, _ = f.svc.Get(ctx, v.ApplicationID, false)
		if got.Status != want {
			t.Fatalf("advance %d: want %s, got %s", i, want, got.Status)
		}
	}
	if !strings.HasPrefix(got.WaybillNo, "EA") || len(got.WaybillNo) != 13 || got.CardNo == "" || got.BatchNo == "" {
		t.Fatalf("logistics missing: %+v", got)
	}
	if got, err = f.svc.Activate(ctx, v.ApplicationID, Actor{}); err != nil || got.Status != Activated {
		t.Fatalf("activate: %+v %v", got, err)
	}
	// History: one row per transition, in order, times in China time.
	full, _ := f.svc.Get(ctx, v.ApplicationID, true)
	var path []string
	for _, h := range full.History {
		path = append(path, string(h.To))
		if _, off := h.At.Zone(); off != 8*3600 {
			t.Errorf("history time not in China time: %v", h.At)
		}
	}
	want := "submitted photo_pending_audit photo_rejected photo_pending_audit photo_approved in_production mailed delivered activated"
	if strings.Join(path, " ") != want {
		t.Errorf("history: %v", path)
	}
	// Audit entries and events for every transition, in the outbox.
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE object_id = $1`, v.ApplicationID); n != 9 {
		t.Errorf("want 9 audit entries, got %d", n)
	}
	for typ, n := range map[events.Type]int{events.ApplicationSubmitted: 1, events.PhotoSubmitted: 2, events.PhotoAudited: 2, events.SMSRequested: 4} {
		if got := f.count(t, `SELECT count(*) FROM outbox WHERE producer = 'card-apply' AND event_type = $1
			AND event->>'subject' = $2`, string(typ), v.ApplicationID); got != n {
			t.Errorf("%s: want %d in the outbox, got %d", typ, n, got)
		}
	}
	// The photo is stored stripped of metadata under a key without personal data.
	var key string
	_ = f.pool.QueryRow(ctx, `SELECT object_key FROM application_photos WHERE application_id = $1 ORDER BY uploaded_at LIMIT 1`, v.ApplicationID).Scan(&key)
	obj, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(PhotoBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if strings.Contains(string(b), "Exif") || !strings.Contains(key, "/"+v.ApplicationID+"-") || strings.Contains(key, idn) {
		t.Errorf("stored photo: key %s, exif kept %v", key, strings.Contains(string(b), "Exif"))
	}
	// The card is issued into cards; one person, one card: no second application.
	if n := f.count(t, `SELECT count(*) FROM cards WHERE card_no = $1 AND status = 'normal'`, got.CardNo); n != 1 {
		t.Errorf("card not issued in cards: %d", n)
	}
	_, err = f.svc.Apply(ctx, Request{IDNumber: idn, Name: "欧阳娜娜", Phone: "13812345678", Channel: "outlet"}, Actor{})
	if p, ok := problem.As(err); !ok || p.Status != 409 || p.Extra["currentState"] != "card_in_use" {
		t.Errorf("apply with a card in use: want 409 card_in_use, got %v", err)
	}
	// Progress by ID number: masked, with logistics.
	prog, err := f.svc.Progress(ctx, strings.ToLower(idn))
	if err != nil || len(prog) != 1 || prog[0].WaybillNo != got.WaybillNo || prog[0].Carrier != "EMS" || len(prog[0].History) != 9 {
		t.Errorf("progress: %+v %v", prog, err)
	}
	if _, err := f.svc.Progress(ctx, randomResidentID(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown person: want ErrNotFound, got %v", err)
	}
}

func TestCardApply_DuplicateAndConcurrentApplicationsYieldExactlyOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	idn := randomResidentID(t)
	req := Request{IDNumber: idn, Name: "张三", Phone: "13812345678", Channel: "h5"}
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Apply(ctx, req, Actor{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[statusOf(err)]++
				if statusOf(err) == 0 {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			codes[201]++
		}()
	}
	wg.Wait()
	if codes[201] != 1 || codes[409] != n-1 {
		t.Fatalf("want 1 accepted and %d conflicts, got %v", n-1, codes)
	}
	if c := f.count(t, `SELECT count(*) FROM applications`); c != 1 {
		t.Errorf("want one application, got %d", c)
	}
	if c := f.count(t, `SELECT count(*) FROM persons`); c != 1 {
		t.Errorf("want one person, got %d", c)
	}
	// The same person by the first-generation 15-digit number is the same person.
	if idn[6:8] == "19" {
		id15 := idn[:6] + idn[8:17]
		_, err := f.svc.Apply(ctx, Request{IDNumber: id15, Name: "张三", Phone: "13812345678", Channel: "outlet"}, Actor{})
		if statusOf(err) != 409 {
			t.Errorf("15-digit duplicate: want 409, got %v", err)
		}
	}
}

func TestCardApply_PermanentResidentOnlyAtTheOutlet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := fpr(t, "840")
	req := Request{IDNumber: id, EnglishName: "Smith John", Phone: "13912345678", Channel: "h5"}
	_, err := f.svc.Apply(ctx, req, Actor{})
	if p, ok := problem.As(err); !ok || p.Status != 422 || p.Extra["rule"] != RuleOutletOnly {
		t.Fatalf("h5: want 422 naming %s, got %v", RuleOutletOnly, err)
	}
	if c := f.count(t, `SELECT count(*) FROM persons`); c != 0 {
		t.Errorf("a refused application registers nobody, got %d", c)
	}
	req.Channel = "outlet"
	v, err := f.svc.Apply(ctx, req, Actor{ID: "op-7"})
	if err != nil {
		t.Fatal(err)
	}
	if v.IDKind != "foreign_permanent_resident" || v.Ethnicity != EthnicityOther || v.Nationality == "中国" || v.Name != "S**** ****" {
		t.Errorf("PR application: %+v", v)
	}
	// The photo of an outlet application comes from the outlet, not from whoever knows its id.
	for _, who := range []Actor{{}, {ID: "someone", Channel: "h5"}, {ID: "bank-1", Channel: "bank"}} {
		_, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441), Actor: who})
		if p, ok := problem.As(err); !ok || p.Status != 403 || p.Extra["rule"] != "photo-from-application-channel" {
			t.Errorf("photo from %+v for an outlet application: want 403, got %v", who, err)
		}
	}
	if got, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441),
		Actor: Actor{ID: "outlet-1", Channel: "outlet"}}); err != nil || got.Status != PhotoPendingAudit {
		t.Errorf("photo from the outlet: %+v %v", got, err)
	}
}

func TestCardApply_BadPhotoRejectedWithReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.svc.Apply(ctx, Request{IDNumber: randomResidentID(t), Name: "李四", Phone: "13812345678", Channel: "h5"}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{ContentType: "image/jpeg", Body: []byte("\x89PNG\r\n\x1a\nrest")})
	p, ok := problem.As(err)
	if !ok || p.Status != 415 || !strings.Contains(p.Detail, "PNG") || len(p.InvalidParams) != 1 {
		t.Fatalf("png: want 415 naming PNG, got %v", err)
	}
	_, err = f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 200, 200)})
	if p, ok := problem.As(err); !ok || p.Status != 400 || p.Extra["code"] != "dimensions" {
		t.Fatalf("small: want 400 dimensions, got %v", err)
	}
	if got, _ := f.svc.Get(ctx, v.ApplicationID, false); got.Status != Submitted {
		t.Errorf("a rejected photo changes nothing, got %s", got.Status)
	}
}

func TestCardApply_ObjectStoreDownIs503AndNothingChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.svc.Apply(ctx, Request{IDNumber: randomResidentID(t), Name: "王五", Phone: "13812345678", Channel: "h5"}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	down := f.storeDown(t)
	_, err = down.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441)})
	if p, ok := problem.As(err); !ok || p.Status != 503 || p.Extra["dependency"] != "object-store" {
		t.Fatalf("want 503 object-store, got %v", err)
	}
	got, _ := f.svc.Get(ctx, v.ApplicationID, true)
	if got.Status != Submitted || got.HasPhoto || len(got.History) != 1 {
		t.Errorf("state changed: %+v", got)
	}
	if n := f.count(t, `SELECT count(*) FROM application_photos`); n != 0 {
		t.Errorf("photo rows: %d", n)
	}
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE event_type = $1`, string(events.PhotoSubmitted)); n != 0 {
		t.Errorf("events: %d", n)
	}
	// Back up: the same upload goes through.
	if got, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441)}); err != nil || got.Status != PhotoPendingAudit {
		t.Errorf("after recovery: %+v %v", got, err)
	}
}

func TestCardApply_KioskPhotoNeedsARegisteredKiosk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `INSERT INTO kiosks (kiosk_id, registered, last_seen_at, last_status, reader_present)
		VALUES ('k-reg', true, now(), 'ok', true), ('k-unreg', false, now(), 'ok', true)`)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{IDNumber: randomResidentID(t), Name: "赵六", Phone: "13812345678", Channel: "kiosk", KioskID: "k-unreg"}
	if _, err := f.svc.Apply(ctx, req, Actor{}); statusOf(err) != 403 {
		t.Fatalf("unregistered kiosk apply: want 403, got %v", err)
	}
	req.KioskID = "k-reg"
	v, err := f.svc.Apply(ctx, req, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "k-unreg", "k-unknown"} {
		if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441), KioskID: k}); statusOf(err) != 403 {
			t.Errorf("kiosk %q: want 403, got %v", k, err)
		}
	}
	got, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441), KioskID: "k-reg"})
	if err != nil || got.Status != PhotoPendingAudit {
		t.Fatalf("registered kiosk: %+v %v", got, err)
	}
}

func TestCardApply_EventsCommitInTheSameTransaction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.svc.Apply(ctx, Request{IDNumber: randomResidentID(t), Name: "孙七", Phone: "13812345678", Channel: "bank"}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	// The history row names the event in the outbox.
	if n := f.count(t, `SELECT count(*) FROM application_history h JOIN outbox o ON o.event_id = h.event_id
		WHERE h.application_id = $1 AND o.event_type = $2`, v.ApplicationID, string(events.ApplicationSubmitted)); n != 1 {
		t.Errorf("want the submitted event joined to its history row, got %d", n)
	}
	before := f.count(t, `SELECT count(*) FROM outbox`)
	// A refused transition writes no event, no history, no audit.
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-1"}); statusOf(err) != 409 {
		t.Fatalf("audit without a photo: want 409, got %v", err)
	}
	// A transition whose audit append fails (a request id shaped like a phone number is
	// refused by the audit log) rolls back its event and history, and the photo uploaded
	// before the transaction is deleted again.
	photo := jpegOf(t, 358, 441)
	_, err = f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: photo, Actor: Actor{RequestID: "13812345678"}})
	if err == nil {
		t.Fatal("want failure")
	}
	if after := f.count(t, `SELECT count(*) FROM outbox`); after != before {
		t.Errorf("events written without their change: %d → %d", before, after)
	}
	if got, _ := f.svc.Get(ctx, v.ApplicationID, true); got.Status != Submitted || len(got.History) != 1 {
		t.Errorf("state changed: %+v", got)
	}
	ph, _ := CheckPhoto("", photo)
	if _, err := f.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(PhotoBucket), Key: aws.String(PhotoKey(v.ApplicationID, v.SubmittedAt, ph.SHA256))}); err == nil {
		t.Errorf("the object of a failed transaction was left behind")
	}
	// The consumer lists the application with the simulated producer, once.
	var ev = mustEvent(t, f, v.ApplicationID)
	tx, _ := f.pool.Begin(ctx)
	if err := f.svc.OnSubmitted(ctx, tx, ev); err != nil {
		t.Fatal(err)
	}
	_ = tx.Commit(ctx)
	if n := f.count(t, `SELECT count(*) FROM sim_card_production WHERE application_id = $1 AND stage = 'listed'`, v.ApplicationID); n != 1 {
		t.Errorf("producer did not list the application: %d", n)
	}
}

func mustEvent(t *testing.T, f *fixture, appID string) event.Event {
	t.Helper()
	var raw []byte
	if err := f.pool.QueryRow(context.Background(), `SELECT event FROM outbox WHERE event_type = $1 AND event->>'subject' = $2`,
		string(events.ApplicationSubmitted), appID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := ev.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return ev
}

// A photo's SHA-256, computed once by the photo check, is the one its PUT is signed with:
// the object arrives whole with the right hash, and MinIO refuses the PUT when the hash
// handed over does not match the body (so it is the one used, not computed again).
func TestS3Store_PutSignsWithTheHashItIsGiven(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := f.svc.Photos.(S3Store)
	body := []byte(strings.Repeat("photo bytes ", 3000))
	sum := sha256.Sum256(body)
	key := fmt.Sprintf("test/hash-%d.jpg", rand.Int64())
	t.Cleanup(func() {
		for _, k := range []string{key, key + ".nohash"} {
			_ = store.Delete(context.Background(), k)
		}
	})
	if err := store.Put(ctx, key, body, "image/jpeg", hex.EncodeToString(sum[:])); err != nil {
		t.Fatalf("put with the body's hash: %v", err)
	}
	out, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(PhotoBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != string(body) {
		t.Fatalf("stored %d bytes, want the %d put", len(got), len(body))
	}
	other := sha256.Sum256([]byte("something else"))
	wrongKey := key + ".wrong"
	if err := store.Put(ctx, wrongKey, body, "image/jpeg", hex.EncodeToString(other[:])); err == nil {
		t.Fatal("put with another body's hash: want MinIO to refuse it, got nil")
	}
	if _, err := f.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(PhotoBucket), Key: aws.String(wrongKey)}); err == nil {
		t.Fatal("the refused put left an object")
	}
	// Without a hash, the client computes it (workbooks).
	if err := store.Put(ctx, key+".nohash", body, "image/jpeg", ""); err != nil {
		t.Fatalf("put without a hash: %v", err)
	}
}
