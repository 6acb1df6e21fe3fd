// Package gateway opens the carrier connections of sms-alert from its settings: one
// logged-in client per configured channel (mobile, telecom, unicom, outprov, fallback),
// each speaking its protocol, delivery reports fed back to the dispatcher.
//
// Settings per channel <ch> (a channel without an address is not configured):
//
//	sms_<ch>_addr        host:port of the carrier's gateway (ISMG / SMGW / SMG)
//	sms_<ch>_protocol    cmpp (default for mobile, outprov, fallback), smgp, sgip
//	sms_<ch>_account     SP id / client id used to log in
//	sms_<ch>_version     CMPP: 3.0 (default) or 2.0
//	sms_<ch>_src         SP number (接入号) shown as the sender
//	sms_<ch>_service_id  service code
//	sms_<ch>_window      submits in flight (default 16)
//	sms_<ch>_node        SGIP: the SP's node id
//	sms_<ch>_corp_id     SGIP: corporation code
//	sms_<ch>_listen      SGIP: address of our report receiver (the SMG connects to it)
//	sms_<ch>_receiver_name  SGIP: login name the SMG presents there; its password is the
//	                     secret sms-<ch>-receiver-secret (setting sms_<ch>_receiver_secret locally)
//
// The shared secret is the function secret sms-<ch>-secret; the setting sms_<ch>_secret
// is read only when that secret is absent (local simulators).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/cmpp"
	"github.com/sscard/platform/shared/sms/link"
	"github.com/sscard/platform/shared/sms/sgip"
	"github.com/sscard/platform/shared/sms/smgp"
)

// Client is a carrier connection as an sms.Gateway.
type Client struct {
	carrier  events.SMSCarrier
	Link     *link.Client
	receiver *sgip.Receiver
}

// Carrier implements sms.Gateway.
func (c *Client) Carrier() events.SMSCarrier { return c.carrier }

// Send implements sms.Gateway: every segment asks for a delivery report.
func (c *Client) Send(ctx context.Context, phone string, segs []sms.Segment) ([]string, error) {
	ids, err := c.Link.Submit(ctx, phone, segs, true)
	var rej *link.RejectedError
	if errors.As(err, &rej) {
		return ids, &sms.RefusedError{Carrier: c.carrier, Code: rej.Result, WrongNumber: c.wrongNumber(rej.Result)}
	}
	return ids, err
}

// wrongNumber: results that mean the number is not served here (CMPP 13, SMGP 47: bad destination).
func (c *Client) wrongNumber(result uint32) bool {
	switch c.carrier {
	case events.CarrierCMPP:
		return result == cmpp.ResultBadDest
	case events.CarrierSMGP:
		return result == smgp.StatusBadDest
	case events.CarrierSGIP:
		return result == sgip.ResultBadNumber
	}
	return false
}

// Close closes the connection (and the SGIP receiver).
func (c *Client) Close() error {
	if c.receiver != nil {
		_ = c.receiver.Close()
	}
	return c.Link.Close()
}

// ReportFunc receives the delivery reports of a channel.
type ReportFunc func(channel string, r sms.Report) error

// Open builds the clients of the configured channels. Connections are made on first
// use, so a gateway that is down does not stop the function from starting.
func Open(env *envconf.Env, sec secrets.Reader, log *slog.Logger, onReport ReportFunc) (map[string]*Client, error) {
	out := map[string]*Client{}
	for _, ch := range sms.Channels {
		addr, ok := env.Lookup("sms_" + ch + "_addr")
		if !ok {
			continue
		}
		key := func(k string) string { return "sms_" + ch + "_" + k }
		protocol := env.String(key("protocol"), map[string]string{sms.ChannelTelecom: "smgp", sms.ChannelUnicom: "sgip"}[ch])
		if protocol == "" {
			protocol = "cmpp"
		}
		secret, err := sec.Optional("sms-" + ch + "-secret")
		if err != nil {
			return nil, err
		}
		if secret == "" {
			secret = env.String(key("secret"), "")
			if secret != "" && log != nil {
				log.Warn("sms gateway secret read from a setting (local simulators only)", "channel", ch)
			}
		}
		cfg := link.Config{Addr: addr, Window: env.Int(key("window"), 16, 1, 1024)}
		cfg.OnReport = func(r link.Report) error {
			return onReport(ch, sms.Report{MsgID: r.MsgID, Stat: r.Stat, Delivered: r.Delivered, At: r.At})
		}
		var proto link.Protocol
		var carrier events.SMSCarrier
		switch protocol {
		case "cmpp":
			v := cmpp.V30
			switch env.String(key("version"), "3.0") {
			case "3.0":
			case "2.0":
				v = cmpp.V20
			default:
				env.Fail(key("version"), "must be 3.0 or 2.0")
			}
			proto = &cmpp.Client{Account: env.String(key("account"), ""), Secret: secret, Version: v,
				SrcID: env.String(key("src"), ""), ServiceID: env.String(key("service_id"), "")}
			carrier = events.CarrierCMPP
		case "smgp":
			proto = &smgp.Client{ClientID: env.String(key("account"), ""), Secret: secret,
				SrcTermID: env.String(key("src"), ""), ServiceID: env.String(key("service_id"), "")}
			carrier = events.CarrierSMGP
		case "sgip":
			proto = &sgip.Client{Node: uint32(env.Int(key("node"), 0, 0, math.MaxUint32)), LoginName: env.String(key("account"), ""),
				Password: secret, SPNumber: env.String(key("src"), ""), CorpID: env.String(key("corp_id"), ""),
				ServiceType: env.String(key("service_id"), "")}
			carrier = events.CarrierSGIP
		default:
			env.Fail(key("protocol"), fmt.Sprintf("protocol %q is unknown (cmpp, smgp, sgip)", protocol))
			continue
		}
		gw := NewClient(carrier, link.New(proto, cfg))
		if protocol == "sgip" {
			// SGIP reports come the other way: the SMG connects to our receiver.
			listen, ok := env.Lookup(key("listen"))
			if !ok {
				env.Fail(key("listen"), "required for sgip: the address the SMG connects to with reports")
				continue
			}
			rsecret, err := sec.Optional("sms-" + ch + "-receiver-secret")
			if err != nil {
				return nil, err
			}
			if rsecret == "" {
				rsecret = env.String(key("receiver_secret"), "")
			}
			gw.receiver = &sgip.Receiver{Name: env.String(key("receiver_name"), ""), Password: rsecret, OnReport: cfg.OnReport}
			if err := gw.receiver.Listen(listen); err != nil {
				return nil, fmt.Errorf("%s: %w", key("listen"), err)
			}
		}
		out[ch] = gw
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// NewClient wraps a link client as the gateway of carrier.
func NewClient(carrier events.SMSCarrier, l *link.Client) *Client {
	return &Client{carrier: carrier, Link: l}
}

// ReceiverAddr is the SGIP report receiver's address ("" for other protocols).
func (c *Client) ReceiverAddr() string {
	if c.receiver == nil {
		return ""
	}
	return c.receiver.Addr()
}
