package main

import (
	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of loss-report: temporary and formal loss, unlock, cancel, the
// blacklist terminals sync (002 二(二)1(10), 004 §1(7),(40)) and the bank sync of status
// changes (002 二(二)1(9)⑧). The rules live in shared/card; {card} is a card id
// ("card-<uuid>") or a card number (社保卡号, a letter and 8 digits).
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, bank, err := open(d)
	if err != nil {
		return nil, err
	}
	r := runtime.NewRouter("loss-report")

	// Cards: status and changes.
	r.Post("/cards", createCard(svc)) // stand-in until card-apply issues cards (local_card_issuing)
	r.Get("/cards/{card}", getCard(svc))
	r.Get("/cards/{card}/history", cardHistory(svc))
	r.Post("/cards/{card}/loss", reportLoss(svc))
	r.Post("/cards/{card}/unlock", changeStatus(svc, "unlock"))
	r.Post("/cards/{card}/cancel", changeStatus(svc, "cancel"))

	// Blacklist for kiosks, merchants and banks.
	r.Get("/blacklist", blacklistDelta(svc))
	r.Get("/blacklist/snapshot", blacklistSnapshot(svc))
	r.Get("/blacklist/{cardNo}", blacklistCheck(svc))

	// Bank sync: loss-report consumes its own status changes and tells the bank.
	r.OnEvent(events.CardStatusChanged, d.Postgres, syncBank(d, svc))
	r.Get("/simulated-bank/cards/{cardNo}", simulatedBankCard(bank))

	// Schedule: lapse expired temporary losses, compact old blacklist changes.
	r.OnSchedule(housekeeping(svc))
	return r, nil
}
