//go:build integration

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/tests/testenv"
)

func cardApplyID(body string) string {
	c, _ := identity.CheckChar(body)
	return body + string(c)
}

func idPhoto(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 358, 441))
	for y := 0; y < 441; y++ {
		for x := 0; x < 358; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 220, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func ensurePhotoBucket(t *testing.T, env *testenv.Env) {
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.Vars["s3_endpoint"]), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(env.Secret(t, "s3-access-key"), env.Secret(t, "s3-secret-key"), "")})
	_, _ = c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("photos")})
}

type appView struct {
	ApplicationID, Status, IDNumber, Name, WaybillNo, CardNo, Carrier, IDKind string
	History                                                                   []struct{ To, At string }
}

// A resident applies through H5, uploads a photo, an operator approves it, the simulated
// producer and EMS move the card along, and the holder activates it — all through the
// local gateway, with the ApplicationSubmitted event brokered back to card-apply.
func TestCardApply_EndToEndThroughTheGateway(t *testing.T) {
	p := startPlatform(t)
	ensurePhotoBucket(t, p.env)
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	base := "/function/card-apply"
	// The community outlet is a signed caller (shared/channelauth).
	// POST /progress is not in the presets yet (docs/security.md): named explicitly.
	outlet := p.register(t, "outlet-e2e-01", channelauth.KindOutlet,
		append(channelauth.Routes(channelauth.KindOutlet), "POST card-apply /progress"))
	jsonH := http.Header{"Content-Type": {"application/json"}}
	idn := cardApplyID(fmt.Sprintf("440308%s%03d", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	body, _ := json.Marshal(map[string]string{"idNumber": idn, "name": "陈小明", "phone": "13800138000", "channel": "h5"})

	// Two concurrent applications for one person: exactly one is recorded.
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	bodies := make([][]byte, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := p.do(t, "POST", base+"/applications", jsonH, body)
			statuses[i], bodies[i] = resp.StatusCode, b
		}()
	}
	wg.Wait()
	var app appView
	created := 0
	for i, s := range statuses {
		switch s {
		case 201:
			created++
			_ = json.Unmarshal(bodies[i], &app)
		case 409:
		default:
			t.Fatalf("apply: unexpected %d %s", s, bodies[i])
		}
	}
	if created != 1 || app.Status != "submitted" || strings.Contains(string(bodies[0])+string(bodies[1]), idn) {
		t.Fatalf("want exactly one application, masked; got %v %+v", statuses, app)
	}
	// The producer (card-apply's own consumer) lists it once the broker delivers the event.
	testenv.Eventually(t, 20*time.Second, "ApplicationSubmitted delivered to the simulated producer", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM sim_card_production WHERE application_id = $1`, app.ApplicationID).Scan(&n)
		return n == 1
	})

	// Permanent-residence ID: rejected through H5 naming the rule, accepted at the outlet.
	pr := cardApplyID("911840198001010" + fmt.Sprintf("%02d", rand.IntN(100)))
	prBody := func(ch string) []byte {
		b, _ := json.Marshal(map[string]string{"idNumber": pr, "englishName": "Smith John", "phone": "13900139000", "channel": ch})
		return b
	}
	resp, b := p.do(t, "POST", base+"/applications", jsonH, prBody("h5"))
	if resp.StatusCode != 422 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), "004 §2(11)2") {
		t.Errorf("PR-ID via h5: want 422 problem naming 004 §2(11)2, got %d %s", resp.StatusCode, b)
	}
	if r := outlet.do(t, "card-apply", "POST", "/applications", jsonH, prBody("outlet")); r.StatusCode != 201 ||
		!strings.Contains(string(r.Body), "foreign_permanent_resident") {
		t.Errorf("PR-ID via outlet: want 201, got %d %s", r.StatusCode, r.Body)
	}
	// Invalid input names the fields.
	resp, b = p.do(t, "POST", base+"/applications", jsonH, []byte(`{"idNumber":"110105194912310021","name":"张三","channel":"h5"}`))
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"idNumber"`) || !strings.Contains(string(b), `"phone"`) {
		t.Errorf("invalid: want 400 naming idNumber and phone, got %d %s", resp.StatusCode, b)
	}

	id := app.ApplicationID
	// A PNG is refused with the reason; a JPEG is accepted.
	resp, b = p.do(t, "PUT", base+"/applications/"+id+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, []byte("\x89PNG\r\n\x1a\n0000"))
	if resp.StatusCode != 415 || !strings.Contains(string(b), "PNG") {
		t.Errorf("png photo: want 415 naming PNG, got %d %s", resp.StatusCode, b)
	}
	resp, b = p.do(t, "PUT", base+"/applications/"+id+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t))
	if resp.StatusCode != 200 || !strings.Contains(string(b), "photo_pending_audit") {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	// The photo audit happens at the outlet: unsigned it is refused, signed it is recorded
	// under the outlet's app id.
	if resp, b = p.do(t, "POST", base+"/applications/"+id+"/photo-audit", http.Header{"Content-Type": {"application/json"},
		"X-Operator-Id": {"auditor-1"}}, []byte(`{"result":"approved"}`)); resp.StatusCode != 401 {
		t.Fatalf("unsigned audit: want 401, got %d %s", resp.StatusCode, b)
	}
	if r := outlet.do(t, "card-apply", "POST", "/applications/"+id+"/photo-audit", jsonH, []byte(`{"result":"approved"}`)); r.StatusCode != 200 ||
		!strings.Contains(string(r.Body), "photo_approved") {
		t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
	}
	var auditor string
	if err := pool.QueryRow(ctx, `SELECT actor FROM application_history WHERE application_id = $1 AND action = 'photo.approve'`, id).
		Scan(&auditor); err != nil || auditor != "outlet-e2e-01" {
		t.Errorf("auditor recorded: %q %v, want the outlet's app id", auditor, err)
	}
	resp, b = p.do(t, "POST", base+"/applications/"+id+"/activate", nil, nil)
	if resp.StatusCode != 409 || !strings.Contains(string(b), `"currentState":"photo_approved"`) {
		t.Errorf("early activation: want 409 naming the state, got %d %s", resp.StatusCode, b)
	}
	for range 3 {
		if resp, b = p.do(t, "POST", base+"/production/advance", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("advance: %d %s", resp.StatusCode, b)
		}
	}
	resp, b = p.do(t, "POST", base+"/applications/"+id+"/activate", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"activated"`) {
		t.Fatalf("activate: %d %s", resp.StatusCode, b)
	}

	// Progress by ID number: masked, history in China time, logistics.
	sr := outlet.do(t, "card-apply", "POST", "/progress", nil, map[string]string{"idNumber": idn})
	b = sr.Body
	var prog struct{ Applications []appView }
	_ = json.Unmarshal(b, &prog)
	if sr.StatusCode != 200 || len(prog.Applications) != 1 || strings.Contains(string(b), idn) || strings.Contains(string(b), "陈小明") {
		t.Fatalf("progress: %d %s", sr.StatusCode, b)
	}
	got := prog.Applications[0]
	if got.Status != "activated" || got.Carrier != "EMS" || len(got.WaybillNo) != 13 || got.CardNo == "" || len(got.History) != 7 ||
		!strings.HasSuffix(got.History[0].At, "+08:00") {
		t.Errorf("progress content: %+v", got)
	}
	// One person, one card: the holder cannot apply again.
	resp, b = p.do(t, "POST", base+"/applications", jsonH, body)
	if resp.StatusCode != 409 || !strings.Contains(string(b), "card_in_use") {
		t.Errorf("second application: want 409 card_in_use, got %d %s", resp.StatusCode, b)
	}
	resp, _ = p.do(t, "GET", base+"/applications/app_000000000000000000000000", nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown application: want 404, got %d", resp.StatusCode)
	}
}

// multipartApplication is an application form with its photo, as an H5 page's FormData
// sends it.
func multipartApplication(t *testing.T, app map[string]string, photo []byte, extra ...string) (http.Header, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if app != nil {
		js, _ := json.Marshal(app)
		h := textproto.MIMEHeader{"Content-Disposition": {`form-data; name="application"`}, "Content-Type": {"application/json"}}
		pw, _ := w.CreatePart(h)
		_, _ = pw.Write(js)
	}
	if photo != nil {
		h := textproto.MIMEHeader{"Content-Disposition": {`form-data; name="photo"; filename="photo.jpg"`}, "Content-Type": {"image/jpeg"}}
		pw, _ := w.CreatePart(h)
		_, _ = pw.Write(photo)
	}
	for _, name := range extra {
		_ = w.WriteField(name, "x")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return http.Header{"Content-Type": {w.FormDataContentType()}}, buf.Bytes()
}

// An application can come with its photo in one multipart request, through the gateway:
// it is recorded in photo_pending_audit; a form without its parts, or with a photo that
// is refused, names the part and records nothing.
func TestCardApply_ApplicationWithPhotoInOneRequest(t *testing.T) {
	p := startPlatform(t)
	ensurePhotoBucket(t, p.env)
	base := "/function/card-apply"
	idn := cardApplyID(fmt.Sprintf("320102%s%03d", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	app := map[string]string{"idNumber": idn, "name": "周九", "phone": "13800138000", "channel": "h5"}

	for _, c := range []struct {
		name   string
		photo  []byte
		app    map[string]string
		extra  []string
		status int
		field  string
	}{
		{"no photo part", nil, app, nil, 400, `"photo"`},
		{"no application part", idPhoto(t), nil, nil, 400, `"application"`},
		{"unknown part", idPhoto(t), app, []string{"signature"}, 400, `"signature"`},
		{"png photo", []byte("\x89PNG\r\n\x1a\n0000"), app, nil, 415, `"photo"`},
	} {
		h, body := multipartApplication(t, c.app, c.photo, c.extra...)
		resp, b := p.do(t, "POST", base+"/applications", h, body)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), c.field) {
			t.Errorf("%s: want %d problem naming %s, got %d %s", c.name, c.status, c.field, resp.StatusCode, b)
		}
	}
	// Nothing was recorded by those: the same person applies now, once.
	h, body := multipartApplication(t, app, idPhoto(t))
	resp, b := p.do(t, "POST", base+"/applications", h, body)
	var v appView
	_ = json.Unmarshal(b, &v)
	if resp.StatusCode != 201 || v.Status != "photo_pending_audit" || strings.Contains(string(b), idn) {
		t.Fatalf("application with photo: want 201 photo_pending_audit, masked; got %d %s", resp.StatusCode, b)
	}
	resp, b = p.do(t, "GET", base+"/applications/"+v.ApplicationID, nil, nil)
	if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != 200 || len(v.History) != 2 ||
		v.History[0].To != "submitted" || v.History[1].To != "photo_pending_audit" {
		t.Errorf("history of an application with photo: %d %s", resp.StatusCode, b)
	}
	if resp, b := p.do(t, "POST", base+"/applications", h, body); resp.StatusCode != 409 {
		t.Errorf("second application with photo: want 409, got %d %s", resp.StatusCode, b)
	}
}
