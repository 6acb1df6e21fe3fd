package application

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/shared/identity"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, identity.ChinaTime)

// fpr returns a valid 2023-format foreign permanent residence ID: accepted in Beijing
// (11), nationality numeric code, born 1980-01-01, sequence 001 (male).
func fpr(t testing.TB, nationality string) string {
	t.Helper()
	body := "911" + nationality + "19800101" + "001"
	c, ok := identity.CheckChar(body)
	if !ok {
		t.Fatalf("bad body %s", body)
	}
	return body + string(c)
}

func fieldsOf(t *testing.T, req Request) (status int, fields map[string]string, extra map[string]any) {
	t.Helper()
	_, p := Validate(req, now)
	if p == nil {
		return 0, nil, nil
	}
	fields = map[string]string{}
	for _, f := range p.InvalidParams {
		fields[f.Name] = f.Reason
	}
	return p.Status, fields, p.Extra
}

func TestValidate_Rules(t *testing.T) {
	resident := Request{IDNumber: "11010519491231002X", Name: "张三", Phone: "13812345678", Channel: "h5"}
	with := func(f func(r *Request)) Request { r := resident; f(&r); return r }
	usa := fpr(t, "840")
	cases := []struct {
		name   string
		req    Request
		status int      // 0 = accepted
		fields []string // fields named
	}{
		{"resident via h5", resident, 0, nil},
		{"resident lower-case x", with(func(r *Request) { r.IDNumber = "11010519491231002x" }), 0, nil},
		{"resident 15 digits", with(func(r *Request) { r.IDNumber = "110105491231002" }), 0, nil},
		{"HK permit", with(func(r *Request) { r.IDNumber = "810000199408230021" }), 0, nil},
		{"Taiwan permit", with(func(r *Request) { r.IDNumber = "830000199201300022" }), 0, nil},
		{"wrong check digit", with(func(r *Request) { r.IDNumber = "110105194912310021" }), 400, []string{"idNumber"}},
		{"impossible date", with(func(r *Request) { r.IDNumber = "110105194902300020" }), 400, []string{"idNumber"}},
		{"empty everything", Request{}, 400, []string{"channel", "idNumber", "name", "phone"}},
		{"unknown channel", with(func(r *Request) { r.Channel = "fax" }), 400, []string{"channel"}},
		{"kiosk without kiosk id", with(func(r *Request) { r.Channel = "kiosk" }), 400, []string{"kioskId"}},
		{"bad phone", with(func(r *Request) { r.Phone = "12345" }), 400, []string{"phone"}},
		{"name with digits", with(func(r *Request) { r.Name = "张3" }), 400, []string{"name"}},
		{"name not GB18030 (private use)", with(func(r *Request) { r.Name = "张\ue000" }), 400, []string{"name"}},
		{"nationality contradicts ID", with(func(r *Request) { r.Nationality = "美国" }), 400, []string{"nationality"}},
		{"nationality agrees", with(func(r *Request) { r.Nationality = "中国" }), 0, nil},
		{"PR-ID via outlet", Request{IDNumber: usa, EnglishName: "Smith John", Phone: "13812345678", Channel: "outlet"}, 0, nil},
		{"PR-ID via outlet with Chinese name", Request{IDNumber: usa, EnglishName: "Smith John", ChineseName: "史密斯", Phone: "13812345678", Channel: "outlet"}, 0, nil},
		{"PR-ID without English name", Request{IDNumber: usa, ChineseName: "史密斯", Phone: "13812345678", Channel: "outlet"}, 400, []string{"englishName"}},
		{"PR-ID via h5", Request{IDNumber: usa, EnglishName: "Smith John", Phone: "13812345678", Channel: "h5"}, 422, []string{"channel"}},
		{"PR-ID via kiosk", Request{IDNumber: usa, EnglishName: "Smith John", Phone: "13812345678", Channel: "kiosk", KioskID: "k1"}, 422, []string{"channel"}},
		{"old 15-char PR-ID via bank", Request{IDNumber: "KAZ110090123105", EnglishName: "Ivanov Ivan", Phone: "13812345678", Channel: "bank"}, 422, []string{"channel"}},
		{"English name with digits", Request{IDNumber: usa, EnglishName: "John 3", Phone: "13812345678", Channel: "outlet"}, 400, []string{"englishName"}},
		{"name and chineseName differ", with(func(r *Request) { r.ChineseName = "李四" }), 400, []string{"name"}},
		{"name too long for the card", with(func(r *Request) { r.Name = strings.Repeat("张", 31) }), 400, []string{"name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, fields, extra := fieldsOf(t, c.req)
			if status != c.status {
				t.Fatalf("status: want %d, got %d (%v)", c.status, status, fields)
			}
			if len(fields) != len(c.fields) {
				t.Errorf("fields: want %v, got %v", c.fields, fields)
			}
			for _, f := range c.fields {
				if fields[f] == "" {
					t.Errorf("want field %s named, got %v", f, fields)
				}
			}
			if status == 422 && extra["rule"] != RuleOutletOnly {
				t.Errorf("422 must name the rule %s, got %v", RuleOutletOnly, extra)
			}
		})
	}
}

func TestValidate_DerivesAndSplits(t *testing.T) {
	v, p := Validate(Request{IDNumber: fpr(t, "840"), EnglishName: " smith  john ", Phone: "+86 138-1234-5678", Channel: "outlet"}, now)
	if p != nil {
		t.Fatal(p)
	}
	d := v.Details
	if d.EnglishName != "SMITH JOHN" || d.Ethnicity != EthnicityOther || d.Nationality == "" || d.Nationality == identity.NationalityChina ||
		d.Phone != "13812345678" || d.CardName != "SMITH JOHN" || d.Name != "" {
		t.Errorf("derived details wrong: %+v", d)
	}
	v, p = Validate(Request{IDNumber: "11010519491231002X", Name: "张三", Phone: "13812345678", Channel: "h5"}, now)
	if p != nil || v.Details.Nationality != identity.NationalityChina || v.Details.Ethnicity != "" {
		t.Errorf("resident defaults wrong: %+v %v", v.Details, p)
	}
	// 16 two-byte characters = 32 bytes: 15 on the card's name record, 1 in the extension.
	long := strings.Repeat("阿", 15) + "布"
	v, p = Validate(Request{IDNumber: "11010519491231002X", Name: long, Phone: "13812345678", Channel: "h5"}, now)
	if p != nil || v.Details.CardName != strings.Repeat("阿", 15) || v.Details.CardNameExt != "布" {
		t.Errorf("split wrong: %+v %v", v.Details, p)
	}
	// The 15-digit number keys the person by its 18-digit form.
	v, _ = Validate(Request{IDNumber: "110105491231002", Name: "张三", Phone: "13812345678", Channel: "h5"}, now)
	if v.ID.Canonical() != "11010519491231002X" {
		t.Errorf("canonical: %s", v.ID)
	}
}

func TestNext_StateMachine(t *testing.T) {
	path := []struct {
		a  Action
		to Status
	}{{ActPhoto, PhotoPendingAudit}, {ActReject, PhotoRejected}, {ActPhoto, PhotoPendingAudit}, {ActApprove, PhotoApproved},
		{ActProduce, InProduction}, {ActMail, Mailed}, {ActDeliver, Delivered}, {ActActivate, Activated}}
	s := Submitted
	for _, p := range path {
		to, ok := Next(s, p.a)
		if !ok || to != p.to {
			t.Fatalf("%s from %s: want %s, got %s %v", p.a, s, p.to, to, ok)
		}
		s = to
	}
	for _, bad := range []struct {
		s Status
		a Action
	}{{Submitted, ActApprove}, {PhotoApproved, ActPhoto}, {InProduction, ActActivate}, {Activated, ActPhoto}, {Mailed, ActWithdrawal}} {
		if _, ok := Next(bad.s, bad.a); ok {
			t.Errorf("%s from %s must be illegal", bad.a, bad.s)
		}
	}
}

func jpegOf(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withEXIF inserts an APP1 Exif segment after SOI.
func withEXIF(b []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), []byte("GPS 39.9N 116.4E secret-device")...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{}, b[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, b[2:]...)
}

func TestCheckPhoto(t *testing.T) {
	good := jpegOf(t, 358, 441)
	ph, err := CheckPhoto("image/jpeg", withEXIF(good))
	if err != nil {
		t.Fatal(err)
	}
	if ph.Width != 358 || ph.Height != 441 || len(ph.SHA256) != 64 || bytes.Contains(ph.JPEG, []byte("Exif")) || bytes.Contains(ph.JPEG, []byte("GPS")) {
		t.Errorf("stored photo keeps metadata or lost size: %dx%d", ph.Width, ph.Height)
	}
	// Stripping keeps the compressed image as it was (so the pixels are the upload's): the
	// same bytes as the upload without the segment, and no bytes after the end of the image.
	if !bytes.Equal(ph.JPEG, good) {
		t.Errorf("stripped photo differs from the upload without its EXIF segment")
	}
	comment := []byte{0xFF, 0xFE, 0x00, 0x0D, 'I', 'D', ' ', '1', '1', '0', '1', '0', '5', 'x', 'x'}
	smuggled := append(append(append([]byte{}, good[:2]...), comment...), good[2:]...)
	smuggled = append(smuggled, []byte("PK\x03\x04 a zip after the image")...)
	if ph, err := CheckPhoto("image/jpeg", smuggled); err != nil || !bytes.Equal(ph.JPEG, good) {
		t.Errorf("comment and trailing bytes not dropped: %v", err)
	}
	var pngBuf bytes.Buffer
	_ = png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 358, 441)))
	huge := append(append([]byte{}, good...), make([]byte, MaxPhotoBytes)...)
	cases := []struct {
		name, ct string
		body     []byte
		status   int
		code     string
	}{
		{"png", "image/jpeg", pngBuf.Bytes(), http.StatusUnsupportedMediaType, "format"},
		{"wrong content type", "image/png", good, http.StatusUnsupportedMediaType, "format"},
		{"empty", "image/jpeg", nil, http.StatusBadRequest, "size"},
		{"too large", "image/jpeg", huge, http.StatusRequestEntityTooLarge, "size"},
		{"too small", "image/jpeg", jpegOf(t, 100, 123), http.StatusBadRequest, "dimensions"},
		{"landscape", "image/jpeg", jpegOf(t, 441, 358), http.StatusBadRequest, "aspect"},
		{"truncated", "image/jpeg", good[:len(good)/2], http.StatusBadRequest, "corrupt"},
		{"no end of image", "image/jpeg", good[:len(good)-2], http.StatusBadRequest, "corrupt"},
		{"segment past the end", "image/jpeg", append(append([]byte{}, good[:2]...), 0xFF, 0xE1, 0xFF, 0xF0, 'E', 'x'), http.StatusBadRequest, "corrupt"},
		{"scan data damaged", "image/jpeg", damageScan(good), http.StatusBadRequest, "corrupt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckPhoto(c.ct, c.body)
			pe, ok := err.(*PhotoError)
			if !ok || pe.Status != c.status || pe.Code != c.code || pe.Reason == "" {
				t.Fatalf("want %d %s with a reason, got %v", c.status, c.code, err)
			}
		})
	}
	if _, err := CheckPhoto("", good); err != nil {
		t.Errorf("missing Content-Type is taken as JPEG: %v", err)
	}
}

// damageScan overwrites the middle of the compressed data with a marker code the decoder
// does not expect there.
func damageScan(b []byte) []byte {
	out := append([]byte{}, b...)
	mid := len(out) * 2 / 3
	out[mid], out[mid+1] = 0xFF, 0xC4
	return out
}

// The stripper never panics, never grows a file, and its output strips to itself.
func FuzzStripJPEG(f *testing.F) {
	good := jpegOf(f, 300, 370)
	f.Add(good)
	f.Add(withEXIF(good))
	f.Add(good[:len(good)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := stripJPEG(b)
		if err != nil {
			return
		}
		if len(out) > len(b) || !bytes.HasPrefix(out, []byte{0xFF, 0xD8}) || !bytes.HasSuffix(out, []byte{0xFF, 0xD9}) {
			t.Fatalf("bad output shape: %d bytes from %d", len(out), len(b))
		}
		again, err := stripJPEG(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %v", err)
		}
	})
}

func TestS10CheckDigit(t *testing.T) {
	// UPU S10: serial 47312482, Σ = 200, 11 − 200 mod 11 = 9.
	if got := S10("RR", 47312482, "CN"); got != "RR473124829CN" {
		t.Errorf("got %s", got)
	}
	if got := S10("EA", 1, "CN"); len(got) != 13 {
		t.Errorf("got %s", got)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("11010519491231002X", "张三", "", "13812345678", "h5")
	f.Add("KAZ110090123105", "", "IVANOV", "13812345678", "outlet")
	f.Fuzz(func(t *testing.T, id, name, en, phone, ch string) {
		v, p := Validate(Request{IDNumber: id, Name: name, EnglishName: en, Phone: phone, Channel: ch}, now)
		if p == nil {
			if v.Details.CardName == "" || v.Details.Phone == "" || v.Details.Nationality == "" {
				t.Fatalf("accepted incomplete application %+v", v.Details)
			}
			if v.ID.Kind.RequiresOutletChannel() && v.Channel != "outlet" {
				t.Fatal("PR-ID accepted outside the outlet channel")
			}
		}
	})
}
