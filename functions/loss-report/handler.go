package main

import (
	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of loss-report: temporary and formal loss, unlock, cancel, the
// blacklist terminals sync (002 二(二)1(10), 004 §1(7),(40)) and the bank sync of status
// changes (002 二(二)1(9)⑧). The rules live in shared/card; {card} is a card id
// ("card-<uuid>") or a card number (社保卡号, a letter and 8 digits). Changes on the bank,
// outlet and kiosk channels are signed calls from that caller (channelauth.Route); reads
// answer anyone, and sign their answer for a signed caller.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, bank, err := open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	g := &channelauth.Gate{V: v}
	r := runtime.NewRouter("loss-report")

	// Cards: status and changes.
	r.Post("/cards", createCard(svc)) // stand-in until card-apply issues cards (local_card_issuing)
	r.Get("/cards/{card}", g.Open(getCard(svc)))
	r.Get("/cards/{card}/history", g.Open(cardHistory(svc)))
	r.Post("/cards/{card}/loss", channelauth.Route(g, readChange, reportLoss(svc)))
	r.Post("/cards/{card}/unlock", channelauth.Route(g, readChange, changeStatus(svc, "unlock")))
	r.Post("/cards/{card}/cancel", channelauth.Route(g, readChange, changeStatus(svc, "cancel")))

	// Blacklist for kiosks, merchants and banks.
	r.Get("/blacklist", g.Open(blacklistDelta(svc)))
	r.Get("/blacklist/snapshot", g.Open(blacklistSnapshot(svc)))
	r.Get("/blacklist/{cardNo}", g.Open(blacklistCheck(svc)))

	// Bank sync: loss-report consumes its own status changes and tells the bank (in
	// process: the simulated bank; a real adapter signs under the bank's own scheme). The
	// bank's own calls to us are the signed bank channel above. The route below is the
	// simulated bank's window for development and tests, not a bank call.
	r.OnEvent(events.CardStatusChanged, d.Postgres, syncBank(d, svc))
	r.Get("/simulated-bank/cards/{cardNo}", simulatedBankCard(bank))

	// Schedule: lapse expired temporary losses, compact old blacklist changes.
	r.OnSchedule(housekeeping(svc))
	return r, nil
}
