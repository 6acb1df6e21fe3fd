//go:build integration

package tests

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/face"
	"github.com/sscard/platform/shared/face/detect"
	"github.com/sscard/platform/shared/face/facetest"
	"github.com/sscard/platform/tests/testenv"
)

func ensureBuckets(t *testing.T, env *testenv.Env, names ...string) {
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.Vars["s3_endpoint"]), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(env.Secret(t, "s3-access-key"), env.Secret(t, "s3-secret-key"), "")})
	for _, n := range names {
		_, _ = c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(n)})
	}
}

type verdict struct {
	PersonID  string
	Match     bool
	Distance  float64
	Threshold float64
}

// End to end through the local gateway: a resident applies with a photo of a face from
// the face-api demo pictures, face-match pre-checks it (PhotoSubmitted), the outlet
// approves it and face-match enrols it (PhotoAudited); a kiosk then verifies a shifted,
// scaled, re-encoded copy (match) and another person's face (no match); an administrator
// finds the person among thousands of synthetic enrollees (audited, masked); unsigned and
// wrong-kind calls are refused; removal takes the person out.
func TestFaceMatch_EndToEnd(t *testing.T) {
	if detect.CascadeDir() == "" {
		t.Fatal("face model files not installed: infra/scripts/services.sh install fetches them")
	}
	model, err := face.LoadInstalled(face.QualityRules{})
	if err != nil {
		t.Fatal(err)
	}
	finder, err := detectFinder()
	if err != nil {
		t.Fatal(err)
	}
	faces, err := facetest.DemoFaces(finder)
	if err != nil {
		t.Fatal(err)
	}
	// Two faces that make usable ID photos: the applicant and a stranger.
	var usable []facetest.Face
	var vecs [][]float32
	for _, f := range faces {
		if e, err := model.Embed(f.Photo(facetest.Enrolment)); err == nil {
			usable = append(usable, f)
			vecs = append(vecs, e.Vector)
		}
	}
	if len(usable) < 3 {
		t.Fatalf("only %d usable demo faces", len(usable))
	}
	applicant, stranger := usable[0], usable[1]

	p := startPlatform(t)
	ensureBuckets(t, p.env, "photos", "models")
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	jsonH := http.Header{"Content-Type": {"application/json"}}
	outlet := p.register(t, "outlet-face-01", channelauth.KindOutlet, nil)
	kiosk := p.register(t, "kiosk-face-01", channelauth.KindKiosk, nil)
	admin := p.register(t, "admin-face-01", channelauth.KindAdmin, nil)
	outletAll := p.register(t, "outlet-face-02", channelauth.KindOutlet, []string{"POST face-match /identify"})

	// Apply online, upload the photo, approve it at the outlet.
	idn := cardApplyID(fmt.Sprintf("440308%s%03d", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	body, _ := json.Marshal(map[string]string{"idNumber": idn, "name": "陈小明", "phone": "13800138000", "channel": "h5"})
	resp, b := p.do(t, "POST", "/function/card-apply/applications", jsonH, body)
	if resp.StatusCode != 201 {
		t.Fatalf("apply: %d %s", resp.StatusCode, b)
	}
	var app appView
	_ = json.Unmarshal(b, &app)
	resp, b = p.do(t, "PUT", "/function/card-apply/applications/"+app.ApplicationID+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, applicant.Photo(facetest.Enrolment))
	if resp.StatusCode != 200 {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	testenv.Eventually(t, 30*time.Second, "PhotoSubmitted pre-checked by face-match", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM face_prechecks WHERE application_id = $1 AND problem IS NULL`, app.ApplicationID).Scan(&n)
		return n == 1
	})
	if r := outlet.do(t, "face-match", "GET", "/prechecks/"+app.ApplicationID, nil, nil); r.StatusCode != 200 || !strings.Contains(string(r.Body), `"usable":true`) {
		t.Errorf("pre-check for the audit: %d %s", r.StatusCode, r.Body)
	}
	if r := outlet.do(t, "card-apply", "POST", "/applications/"+app.ApplicationID+"/photo-audit", jsonH, []byte(`{"result":"approved"}`)); r.StatusCode != 200 {
		t.Fatalf("approve: %d %s", r.StatusCode, r.Body)
	}
	var personID string
	if err := pool.QueryRow(ctx, `SELECT person_id FROM applications WHERE application_id = $1`, app.ApplicationID).Scan(&personID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "PhotoAudited enrolled by face-match", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM face_enrolments WHERE person_id = $1`, personID).Scan(&n)
		return n == 1
	})

	verify := func(who *signer, photo []byte) (int, verdict, string) {
		r := who.do(t, "face-match", "POST", "/verify", jsonH, map[string]any{"person": personID, "photo": base64.StdEncoding.EncodeToString(photo)})
		var v verdict
		_ = json.Unmarshal(r.Body, &v)
		return r.StatusCode, v, string(r.Body)
	}
	// 1:1 at the kiosk: a changed copy of the card photo matches, another face does not.
	copyPhoto := applicant.Photo(facetest.Variant{DX: 0.05, DY: -0.03, Zoom: 1.15, Gain: 0.85, Quality: 50})
	if st, v, raw := verify(kiosk, copyPhoto); st != 200 || !v.Match || v.Distance > v.Threshold {
		t.Errorf("genuine verify: %d %s", st, raw)
	} else {
		t.Logf("genuine distance %.3f (threshold %.2f)", v.Distance, v.Threshold)
	}
	if st, v, raw := verify(outlet, stranger.Photo(facetest.Enrolment)); st != 200 || v.Match {
		t.Errorf("impostor verify: %d %s", st, raw)
	} else {
		t.Logf("impostor distance %.3f", v.Distance)
	}
	// A photo without a face: a 422 problem naming why.
	if st, _, raw := verify(kiosk, facetest.JPEG(image.NewRGBA(image.Rect(0, 0, 358, 441)), 90)); st != 422 || !strings.Contains(raw, "no-face") {
		t.Errorf("no face: want 422 no-face, got %d %s", st, raw)
	}
	// Unsigned: the uniform 401. Admin may not verify (not a counter), kiosk may not identify.
	vb, _ := json.Marshal(map[string]any{"person": personID, "photo": base64.StdEncoding.EncodeToString(copyPhoto)})
	if resp, b := p.do(t, "POST", "/function/face-match/verify", jsonH, vb); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
		t.Errorf("unsigned verify: want 401, got %d %s", resp.StatusCode, b)
	}
	idBody := map[string]any{"photo": base64.StdEncoding.EncodeToString(copyPhoto), "reason": "case FM-test", "topK": 3}
	if r := kiosk.do(t, "face-match", "POST", "/identify", jsonH, idBody); r.StatusCode != 403 {
		t.Errorf("kiosk identify: want 403, got %d %s", r.StatusCode, r.Body)
	}
	if r := outletAll.do(t, "face-match", "POST", "/identify", jsonH, idBody); r.StatusCode != 403 {
		t.Errorf("outlet identify (route granted, wrong kind): want 403, got %d %s", r.StatusCode, r.Body)
	}

	// Thousands of synthetic enrollees around the real faces' descriptors.
	const crowd = 3000
	rng := rand.New(rand.NewPCG(9, 9))
	rows := make([][]any, crowd)
	keys := make([]string, crowd)
	for i := range rows {
		a, c := vecs[rng.IntN(len(vecs))], vecs[rng.IntN(len(vecs))]
		w := rng.Float32()
		v := make([]float32, len(a))
		for j := range v {
			v[j] = w*a[j] + (1-w)*c[j] + float32(rng.NormFloat64()*0.06)
		}
		keys[i] = fmt.Sprintf("person-synthetic-%05d", i)
		rows[i] = []any{keys[i], model.Name(), encode(v), "test", time.Now()}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"face_enrolments"}, []string{"person_id", "model", "vector", "source", "enrolled_at"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO face_changes (person_id, op) SELECT unnest($1::text[]), 'enrol'`, keys); err != nil {
		t.Fatal(err)
	}
	identify := func() []face.Candidate {
		r := admin.do(t, "face-match", "POST", "/identify", jsonH, idBody)
		var out struct{ Candidates []face.Candidate }
		if err := json.Unmarshal(r.Body, &out); err != nil || r.StatusCode != 200 {
			t.Fatalf("identify: %d %s", r.StatusCode, r.Body)
		}
		return out.Candidates
	}
	c := identify()
	if len(c) == 0 || c[0].PersonID != personID || c[0].Name != "陈**" || strings.Contains(c[0].IDNumber, idn[6:14]) || !strings.HasSuffix(c[0].IDNumber, idn[14:]) {
		t.Fatalf("identify among %d: want %s first, masked; got %+v", crowd, personID, c)
	}
	t.Logf("identify among %d: %+v", crowd, c)
	var audited int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'face.identify' AND actor = 'admin-face-01'`).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("identify audit entries: %d (%v)", audited, err)
	}
	// A snapshot, a fresh instance: it loads the snapshot and the changes since.
	if r := admin.do(t, "face-match", "POST", "/index/snapshot", nil, nil); r.StatusCode != 200 {
		t.Fatalf("snapshot: %d %s", r.StatusCode, r.Body)
	}
	p.scale(t, "face-match", 0)
	p.scale(t, "face-match", 1)
	if r := admin.do(t, "face-match", "DELETE", "/enrolments/"+keys[0], nil, nil); r.StatusCode != 204 {
		t.Errorf("remove: %d %s", r.StatusCode, r.Body)
	}
	if c := identify(); len(c) == 0 || c[0].PersonID != personID {
		t.Errorf("identify after restart: %+v", c)
	}
	// Removal: the person is out of 1:1 and 1:N.
	if r := admin.do(t, "face-match", "DELETE", "/enrolments/"+personID, nil, nil); r.StatusCode != 204 {
		t.Fatalf("remove: %d %s", r.StatusCode, r.Body)
	}
	for _, c := range identify() {
		if c.PersonID == personID {
			t.Errorf("removed person still identified: %+v", c)
		}
	}
	if st, _, raw := verify(kiosk, copyPhoto); st != 404 {
		t.Errorf("verify after removal: want 404, got %d %s", st, raw)
	}
}

func detectFinder() (*detect.Finder, error) { return detect.Load(os.DirFS(detect.CascadeDir())) }

func encode(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// Without its model files face-match still starts (the rest of the platform does not
// depend on it): signed calls get 503 with Retry-After, unsigned ones the uniform 401.
func TestFaceMatch_WithoutModelAnswers503(t *testing.T) {
	p := startPlatform(t, "SSCARD_FACE_API="+t.TempDir())
	kiosk := p.register(t, "kiosk-face-09", channelauth.KindKiosk, nil)
	jsonH := http.Header{"Content-Type": {"application/json"}}
	r := kiosk.do(t, "face-match", "POST", "/verify", jsonH, map[string]any{"person": "p_x", "photo": "AAAA"})
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "face model files") {
		t.Errorf("verify without model: want 503 naming the model files, got %d %s", r.StatusCode, r.Body)
	}
	if resp, b := p.do(t, "POST", "/function/face-match/verify", jsonH, []byte(`{}`)); resp.StatusCode != 401 {
		t.Errorf("unsigned: want 401, got %d %s", resp.StatusCode, b)
	}
}
