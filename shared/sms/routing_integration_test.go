//go:build integration

package sms_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/gateway"
	"github.com/sscard/platform/tests/testenv"
)

// Numbers go to their carrier's gateway by prefix, each in its own protocol, configured as
// sms-alert configures them; a number ported away from Telecom is refused there and sent
// through the fallback; every record ends delivered by its carrier's report (SGIP's
// through our receiver).
func TestSMS_RoutingAcrossTheThreeCarriersAndFallback(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	start := func(s *smssim.Sim, err error) *smssim.Sim {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	mobile := start(smssim.StartCMPP("127.0.0.1:0", map[string]string{"901001": "m-secret"}))
	telecom := start(smssim.StartSMGP("127.0.0.1:0", map[string]string{"10990001": "t-secret"}))
	unicom := start(smssim.StartSGIP("127.0.0.1:0", map[string]string{"sp-unicom": "u-secret"}))
	fallback := start(smssim.StartCMPP("127.0.0.1:0", map[string]string{"901002": "f-secret"}))
	env := envconf.New([]string{
		"sms_mobile_addr=" + mobile.Addr(), "sms_mobile_account=901001", "sms_mobile_secret=m-secret", "sms_mobile_src=10657001",
		"sms_telecom_addr=" + telecom.Addr(), "sms_telecom_account=10990001", "sms_telecom_secret=t-secret", "sms_telecom_src=10659001",
		"sms_unicom_addr=" + unicom.Addr(), "sms_unicom_account=sp-unicom", "sms_unicom_secret=u-secret", "sms_unicom_src=10655001",
		"sms_unicom_node=3020012345", "sms_unicom_listen=127.0.0.1:0", "sms_unicom_receiver_name=smg", "sms_unicom_receiver_secret=rcv",
		"sms_fallback_addr=" + fallback.Addr(), "sms_fallback_account=901002", "sms_fallback_secret=f-secret", "sms_fallback_src=10657002",
	})
	gws, err := gateway.Open(env, testenv.Load(t).Secrets, nil, func(ch string, rep sms.Report) error {
		return r.disp.OnReport(ctx, ch, rep)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.disp.Gateways = map[string]sms.Gateway{}
	for ch, g := range gws {
		r.disp.Gateways[ch] = g
		t.Cleanup(func() { g.Close() })
	}
	unicom.SetReportTo(smssim.SGIPReportTo{Addr: gws[sms.ChannelUnicom].ReceiverAddr(), Name: "smg", Password: "rcv"})
	telecom.RefuseNumber("18900000009") // ported to another carrier

	phones := map[string]*smssim.Sim{"13800000001": mobile, "18900000002": telecom, "18600000003": unicom,
		"18900000009": fallback, "19200000004": fallback}
	i := 0
	for phone := range phones {
		i++
		pid, err := r.persons.Register(ctx, fmt.Sprintf("1101051949%07dX", i), "王五", phone)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.consume(t, events.SMSRequested, events.SMSRequestedData{MessageID: "route:" + phone, Template: "card.application.activated",
			RecipientRef: pid, Purpose: events.PurposeNotice}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // the ported number is requeued to the fallback on the first pass
		if _, err := r.disp.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for phone, sim := range phones {
		got := 0
		for _, m := range sim.Received() {
			if m.Dest == phone && m.Text == "您的社保卡已启用，可正常使用。" {
				got++
			}
		}
		if got != 1 {
			t.Errorf("%s: %d SMS at the %s simulator", phone, got, sim.Protocol)
		}
	}
	want := map[string]string{"13800000001": "cmpp/mobile", "18900000002": "smgp/telecom", "18600000003": "sgip/unicom",
		"18900000009": "cmpp/fallback", "19200000004": "cmpp/fallback"}
	testenv.Eventually(t, 10*time.Second, "every record delivered by its carrier's report", func() bool {
		for phone, w := range want {
			rec := r.status(t, "route:"+phone)
			if len(rec) != 1 || rec[0].Status != sms.StatusDelivered || rec[0].Carrier+"/"+rec[0].Channel != w {
				return false
			}
		}
		return true
	})
}
