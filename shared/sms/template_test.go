package sms

import (
	"errors"
	"testing"
)

func TestRender(t *testing.T) {
	got, err := Render("有{count}张社保卡照片审核超期，请尽快审核。", map[string]string{"count": "12", "extra": "x"})
	if err != nil || got != "有12张社保卡照片审核超期，请尽快审核。" {
		t.Fatalf("%q %v", got, err)
	}
	_, err = Render("已由{carrier}寄出，运单号{waybillNo}，{carrier}", map[string]string{})
	var me *MissingParamsError
	if !errors.As(err, &me) || len(me.Names) != 2 || me.Names[0] != "carrier" || me.Names[1] != "waybillNo" {
		t.Fatalf("missing: %v", err)
	}
	if p := Params("{a}{b}{a}"); len(p) != 2 {
		t.Fatalf("params %v", p)
	}
}

func TestRoutes(t *testing.T) {
	r, err := NewRoutes(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for phone, want := range map[string]string{
		"13800138000": ChannelMobile, "13490000000": ChannelTelecom, "13410000000": ChannelMobile,
		"18612345678": ChannelUnicom, "17001234567": ChannelTelecom, "17031234567": ChannelMobile,
		"19212345678": ChannelFallback, "17406123456": ChannelFallback, "19912345678": ChannelTelecom,
	} {
		if got := r.Channel(phone); got != want {
			t.Errorf("%s: got %s, want %s", phone, got, want)
		}
	}
	home, _ := NewRoutes(nil, []string{"1380013", "1860000"})
	if home.Channel("13800138000") != ChannelMobile || home.Channel("13900139000") != ChannelOutProv {
		t.Error("out-of-province routing")
	}
	if _, err := NewRoutes(map[string][]string{ChannelMobile: {"138"}, ChannelUnicom: {"138"}}, nil); err == nil {
		t.Error("a prefix given to two carriers was accepted")
	}
	for in, want := range map[string]string{"+86 138-0013-8000": "13800138000", "008613800138000": "13800138000", "12345": ""} {
		if got, _ := NormalisePhone(in); got != want {
			t.Errorf("normalise %q: %q", in, got)
		}
	}
}
