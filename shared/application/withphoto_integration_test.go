//go:build integration

package application

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/problem"
)

// An application sent with its photo is recorded as the two steps it stands for: in
// photo_pending_audit, with both history rows and events, the photo row and the object
// in the store; the audit log has the one act.
func TestApplyWithPhoto_RecordsBothSteps(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.svc.ApplyWithPhoto(ctx, Request{IDNumber: randomResidentID(t), Name: "赵六", Phone: "13812345678", Channel: "h5"},
		PhotoUpload{ContentType: "image/jpeg", Body: jpegOf(t, 358, 441)}, Actor{RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != PhotoPendingAudit || !v.HasPhoto || v.Name != "赵*" {
		t.Fatalf("view: %+v", v)
	}
	got, err := f.svc.Get(ctx, v.ApplicationID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != PhotoPendingAudit || !got.HasPhoto || len(got.History) != 2 ||
		got.History[0].To != Submitted || got.History[1].From != Submitted || got.History[1].To != PhotoPendingAudit {
		t.Fatalf("stored: %+v", got)
	}
	for _, q := range []struct {
		what string
		sql  string
		want int
	}{
		{"photo rows", `SELECT count(*) FROM application_photos WHERE application_id = $1`, 1},
		// One request, one act of the applicant's: one audit entry that names the photo.
		{"audit entries", `SELECT count(*) FROM audit_log WHERE object_id = $1 AND action = 'application.submit'
			AND detail->>'to' = 'photo_pending_audit' AND detail->>'photo' LIKE 'photos/%'`, 1},
		{"all audit entries", `SELECT count(*) FROM audit_log WHERE object_id = $1`, 1},
		{"events", `SELECT count(*) FROM outbox WHERE event->>'subject' = $1 AND event_type IN ('` +
			string(events.ApplicationSubmitted) + `', '` + string(events.PhotoSubmitted) + `')`, 2},
		{"version", `SELECT version FROM applications WHERE application_id = $1`, 1},
	} {
		if n := f.count(t, q.sql, v.ApplicationID); n != q.want {
			t.Errorf("%s: %d, want %d", q.what, n, q.want)
		}
	}
	var key string
	if err := f.pool.QueryRow(ctx, `SELECT object_key FROM application_photos WHERE application_id = $1`, v.ApplicationID).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(PhotoBucket), Key: aws.String(key)}); err != nil {
		t.Errorf("object %s: %v", key, err)
	}
	// The photo goes on like one uploaded separately: audit approves it.
	if a, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-1"}); err != nil || a.Status != PhotoApproved {
		t.Fatalf("audit: %+v %v", a, err)
	}
}

// A photo that is refused, or a store that is down, leaves nobody and nothing recorded.
func TestApplyWithPhoto_RefusedPhotoOrStoreDownRecordsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req := Request{IDNumber: randomResidentID(t), Name: "钱七", Phone: "13812345678", Channel: "h5"}
	_, err := f.svc.ApplyWithPhoto(ctx, req, PhotoUpload{Body: jpegOf(t, 200, 200)}, Actor{})
	if p, ok := problem.As(err); !ok || p.Status != 400 || p.Extra["code"] != "dimensions" || len(p.InvalidParams) != 1 {
		t.Fatalf("small photo: want 400 dimensions, got %v", err)
	}
	_, err = f.storeDown(t).ApplyWithPhoto(ctx, req, PhotoUpload{Body: jpegOf(t, 358, 441)}, Actor{})
	if p, ok := problem.As(err); !ok || p.Status != 503 || p.Extra["dependency"] != "object-store" {
		t.Fatalf("store down: want 503 object-store, got %v", err)
	}
	for _, table := range []string{"persons", "applications", "application_photos", "outbox", "audit_log"} {
		if n := f.count(t, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%s: %d rows after refusals", table, n)
		}
	}
	if _, err := f.svc.ApplyWithPhoto(ctx, req, PhotoUpload{Body: jpegOf(t, 358, 441)}, Actor{}); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// Concurrent applications with photos for one new person: exactly one is recorded, one
// person is registered, and the losers' photo objects are deleted again.
func TestApplyWithPhoto_ConcurrentApplicationsYieldExactlyOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req := Request{IDNumber: randomResidentID(t), Name: "孙八", Phone: "13812345678", Channel: "h5"}
	const n = 8
	// A bucket of its own, so every object in it is this test's.
	bucket := fmt.Sprintf("photos-race-%d", time.Now().UnixNano())
	if _, err := f.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	svc := *f.svc
	svc.Photos = S3Store{Client: f.s3, Bucket: bucket}
	// Each upload differs, so each has its own object key.
	photos := make([][]byte, n)
	for i := range photos {
		photos[i] = jpegOf(t, 358+i, 441+i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var won string
	for i := range n {
		wg.Go(func() {
			v, err := svc.ApplyWithPhoto(ctx, req, PhotoUpload{Body: photos[i]}, Actor{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if statusOf(err) == 0 {
					t.Errorf("unexpected error: %v", err)
				}
				codes[statusOf(err)]++
				return
			}
			codes[201]++
			won = v.ApplicationID
		})
	}
	wg.Wait()
	if codes[201] != 1 || codes[409] != n-1 {
		t.Fatalf("want 1 accepted and %d conflicts, got %v", n-1, codes)
	}
	for table, want := range map[string]int{"persons": 1, "applications": 1, "application_photos": 1} {
		if c := f.count(t, `SELECT count(*) FROM `+table); c != want {
			t.Errorf("%s: %d, want %d", table, c, want)
		}
	}
	// Only the winner's object remains: the losers deleted theirs.
	out, err := f.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	if len(keys) != 1 || !strings.Contains(keys[0], "/"+won+"-") {
		t.Errorf("objects left: %v (winner %s)", keys, won)
	}
}

// A person the register knows (here: whose first application was withdrawn) applies
// again: the batch's registration is skipped, the person looked up, and the new
// application recorded under the same person.
func TestApplyWithPhoto_KnownPersonAppliesAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req := Request{IDNumber: randomResidentID(t), Name: "吴十", Phone: "13812345678", Channel: "h5"}
	first, err := f.svc.Apply(ctx, req, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Withdraw(ctx, first.ApplicationID, Actor{}); err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.ApplyWithPhoto(ctx, req, PhotoUpload{Body: jpegOf(t, 358, 441)}, Actor{})
	if err != nil || again.Status != PhotoPendingAudit {
		t.Fatalf("second application: %+v %v", again, err)
	}
	if n := f.count(t, `SELECT count(*) FROM persons`); n != 1 {
		t.Errorf("persons: %d, want 1", n)
	}
	if n := f.count(t, `SELECT count(DISTINCT person_id) FROM applications`); n != 1 {
		t.Errorf("applications name %d people, want 1", n)
	}
}

// A photo sent again after a rejection answers with the application as stored: pending
// audit, the rejection reason cleared (the answer is built from the row as written).
func TestUploadPhoto_AfterRejectionAnswersAsStored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.svc.ApplyWithPhoto(ctx, Request{IDNumber: randomResidentID(t), Name: "郑十一", Phone: "13812345678", Channel: "h5"},
		PhotoUpload{Body: jpegOf(t, 358, 441)}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditRejected, "背景不是白色", Actor{ID: "op-1"})
	if err != nil || r.Status != PhotoRejected || r.PhotoReason == "" {
		t.Fatalf("reject: %+v %v", r, err)
	}
	got, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 360, 443)})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.svc.Get(ctx, v.ApplicationID, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != PhotoPendingAudit || got.PhotoReason != "" || !got.HasPhoto ||
		got.Status != stored.Status || got.PhotoReason != stored.PhotoReason || got.StatusSince != stored.StatusSince {
		t.Errorf("answer %+v, stored %+v", got, stored)
	}
}
