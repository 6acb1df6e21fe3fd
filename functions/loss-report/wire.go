package main

import (
	"errors"

	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/platform"
)

// open assembles the card service from the function's settings (card.LoadConfig lists
// them), the audit log (with its checkpoint key when mounted) and the bank adapter.
func open(d *platform.Deps) (*card.Service, *card.SimulatedBank, error) {
	if d.Postgres == nil {
		return nil, nil, errors.New("loss-report needs Postgres")
	}
	cfg, err := card.LoadConfig(d.Env)
	if err != nil {
		return nil, nil, err
	}
	// card.LoadConfig accepts no other adapter: no real bank interface exists yet.
	bank := &card.SimulatedBank{Pool: d.Postgres}
	d.Log.Warn("bank sync uses the SIMULATED bank (development/test only)")
	if cfg.LocalIssuing {
		d.Log.Warn("local_card_issuing is on: POST /cards creates cards (card-apply will own issuance)")
	}
	return &card.Service{Pool: d.Postgres, Config: cfg, Audit: d.Audit, Bank: bank}, bank, nil
}
