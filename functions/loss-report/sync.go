package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// syncBank consumes CardStatusChanged: the bank is told and its acknowledgement recorded.
// A bank that fails answers 503, so the broker redelivers; an event that can never apply
// answers 422 and is dead-lettered.
func syncBank(d *platform.Deps, svc *card.Service) runtime.EventFunc {
	return func(ctx context.Context, tx pgx.Tx, ev event.Event) error {
		err := svc.SyncBank(ctx, tx, ev)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, card.ErrBadEvent):
			return problem.New(http.StatusUnprocessableEntity, "event-rejected", "Event cannot be applied", err.Error())
		case errors.Is(err, card.ErrBankUnavailable):
			return d.Unavailable("bank", err)
		}
		return err
	}
}

// simulatedBankCard: GET /simulated-bank/cards/{cardNo} → what the simulated bank knows
// of the card (development and tests).
func simulatedBankCard(bank *card.SimulatedBank) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		c, err := bank.Card(req.Context(), runtime.Param(req, "cardNo"))
		if errors.Is(err, card.ErrNotFound) {
			return handler.Response{}, problem.NotFound("the simulated bank has no record of this card")
		}
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, c)
	}
}

// housekeeping is the scheduled job: lapse expired temporary losses (with the full
// bookkeeping and events) and compact blacklist changes older than the retention.
func housekeeping(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		now := time.Now()
		lapsed, err := svc.Lapse(req.Context(), now)
		if err != nil {
			return handler.Response{}, err
		}
		compacted, err := svc.Compact(req.Context(), now)
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, map[string]any{"lapsed": lapsed, "compacted": compacted})
	}
}

// cardProblem maps the card package's errors to problems; other errors go to the
// runtime, which answers outages with 503 and anything else with 500.
func cardProblem(err error) error {
	var te *card.TransitionError
	var ie *card.InputError
	var ru *card.ReplacementUnderwayError
	switch {
	case errors.As(err, &ru):
		return problem.Conflict("the card cannot be unlocked: a replacement card is being made for it; withdraw the replacement application first (possible before production)").
			With("rule", "replacement-underway").With("currentState", ru.Current).With("currentStateCode", ru.CurrentCode).
			With("applicationId", ru.ApplicationID).With("applicationState", ru.Application)
	case errors.As(err, &te):
		return problem.Conflict(fmt.Sprintf("%s is not possible while the card is %s", te.Action, te.Current)).
			With("currentState", te.Current).With("currentStateCode", te.CurrentCode).With("action", te.Action)
	case errors.As(err, &ie):
		params := make([]problem.InvalidParam, len(ie.Fields))
		for i, f := range ie.Fields {
			params[i] = problem.Field(f.Name, f.Reason)
		}
		return problem.Invalid("the request was not carried out", params...)
	case errors.Is(err, card.ErrNotFound):
		return problem.NotFound("no card with this id or number")
	case errors.Is(err, card.ErrCardExists):
		return problem.Conflict("a card with this number exists")
	}
	return err
}
