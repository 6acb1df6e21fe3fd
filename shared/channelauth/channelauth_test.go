package channelauth

import (
	"net/http"
	"testing"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/problem"
)

func TestBind(t *testing.T) {
	bank := &callsign.Identity{AppID: "bank-icbc", Kind: KindBank}
	outlet := &callsign.Identity{AppID: "outlet-01", Kind: KindOutlet}
	kiosk := &callsign.Identity{AppID: "kiosk-7", Kind: KindKiosk}
	app := &callsign.Identity{AppID: "h5-backend", Kind: "app"}
	cases := []struct {
		name   string
		caller *callsign.Identity
		claim  Claim
		want   Actor
		status int
	}{
		{"unsigned online keeps its operator", nil, Claim{Channel: "online", Operator: "op-1"}, Actor{ID: "op-1", Channel: "online"}, 0},
		{"unsigned phone", nil, Claim{Channel: "phone"}, Actor{Channel: "phone"}, 0},
		{"unsigned h5", nil, Claim{Channel: "h5"}, Actor{Channel: "h5"}, 0},
		{"unsigned no channel", nil, Claim{}, Actor{}, 0},
		{"unsigned bank", nil, Claim{Channel: "bank"}, Actor{}, 401},
		{"unsigned outlet", nil, Claim{Channel: "outlet", Operator: "op-1"}, Actor{}, 401},
		{"unsigned kiosk", nil, Claim{Channel: "kiosk", KioskID: "kiosk-7"}, Actor{}, 401},
		{"unsigned naming a kiosk", nil, Claim{KioskID: "kiosk-7"}, Actor{}, 401},
		{"bank on bank", bank, Claim{Channel: "bank"}, Actor{ID: "bank-icbc", Channel: "bank", Signed: true}, 0},
		{"bank, no channel named", bank, Claim{}, Actor{ID: "bank-icbc", Channel: "bank", Signed: true}, 0},
		{"bank as outlet", bank, Claim{Channel: "outlet"}, Actor{}, 403},
		{"bank as online", bank, Claim{Channel: "online"}, Actor{}, 403},
		{"bank naming another operator", bank, Claim{Channel: "bank", Operator: "teller-9"}, Actor{}, 403},
		{"bank naming itself", bank, Claim{Channel: "bank", Operator: "bank-icbc"}, Actor{ID: "bank-icbc", Channel: "bank", Signed: true}, 0},
		{"bank naming a kiosk", bank, Claim{Channel: "bank", KioskID: "kiosk-7"}, Actor{}, 403},
		{"outlet on outlet", outlet, Claim{Channel: "outlet"}, Actor{ID: "outlet-01", Channel: "outlet", Signed: true}, 0},
		{"kiosk as itself", kiosk, Claim{Channel: "kiosk", KioskID: "kiosk-7"}, Actor{ID: "kiosk-7", Channel: "kiosk", KioskID: "kiosk-7", Signed: true}, 0},
		{"kiosk naming no id", kiosk, Claim{Channel: "kiosk"}, Actor{ID: "kiosk-7", Channel: "kiosk", KioskID: "kiosk-7", Signed: true}, 0},
		{"kiosk claiming another kiosk", kiosk, Claim{Channel: "kiosk", KioskID: "kiosk-8"}, Actor{}, 403},
		{"kiosk as bank", kiosk, Claim{Channel: "bank"}, Actor{}, 403},
		{"app on h5", app, Claim{Channel: "h5"}, Actor{ID: "h5-backend", Channel: "h5", Signed: true}, 0},
		{"app as bank", app, Claim{Channel: "bank"}, Actor{}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Bind(c.caller, c.claim)
			if c.status == 0 {
				if err != nil || got != c.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
				return
			}
			p, ok := problem.As(err)
			if !ok || p.Status != c.status {
				t.Fatalf("want %d problem, got %+v %v", c.status, got, err)
			}
			if c.status == 401 && p.Detail != callsign.Unauthenticated().Detail {
				t.Errorf("401 must be callsign's uniform answer, got %q", p.Detail)
			}
		})
	}
}

func TestRequiresSignature(t *testing.T) {
	for ch, want := range map[string]bool{"bank": true, "outlet": true, "kiosk": true, "h5": false, "online": false,
		"phone": false, "employer": false, "": false} {
		if RequiresSignature(ch) != want {
			t.Errorf("%q: want %v", ch, want)
		}
	}
}

func TestPresetsParse(t *testing.T) {
	for _, k := range Kinds() {
		rs := Routes(k)
		if len(rs) == 0 {
			t.Fatalf("%s: no preset", k)
		}
		for _, r := range rs {
			if err := callsign.ParseRoute(r); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
	}
	a := callsign.App{Routes: Routes(KindKiosk)}
	if a.Allows(http.MethodPost, "loss-report", "/cards/C1/cancel") || !a.Allows(http.MethodPost, "loss-report", "/cards/C1/loss") {
		t.Error("kiosk preset: loss yes, cancel (counters only) no")
	}
}

func TestPresented(t *testing.T) {
	if Presented(http.Header{"Content-Type": {"application/json"}}) {
		t.Error("no X-GM header: unsigned")
	}
	h := http.Header{}
	h.Set(callsign.HeaderNonce, "n")
	if !Presented(h) {
		t.Error("any X-GM header: treated as signed, so it is verified")
	}
}
