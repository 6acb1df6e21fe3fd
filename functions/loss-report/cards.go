package main

import (
	"net/http"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// changeBody is the body of the status-change routes. identityVerified is the caller's
// assertion that it verified the holder (ID card at a counter or bank, e-card scan login
// online, ID reader and face match at a kiosk); formal loss, unlocking a formal loss and
// cancelling need it. operator is an opaque operator id for the audit log on the phone and
// online channels; on the bank, outlet and kiosk channels the signed caller is the actor.
type changeBody struct {
	Type             string `json:"type"` // loss only: temporary | formal
	Channel          string `json:"channel"`
	Reason           string `json:"reason"`
	IdentityVerified bool   `json:"identityVerified"`
	Operator         string `json:"operator"`
}

// readChange: the channel and the operator are in the body.
func readChange(req handler.Request) (changeBody, channelauth.Claim, error) {
	var in changeBody
	if err := runtime.DecodeJSON(req, &in); err != nil {
		return in, channelauth.Claim{}, err
	}
	return in, channelauth.Claim{Channel: in.Channel, Operator: in.Operator}, nil
}

// reportLoss: POST /cards/{card}/loss {type, channel, reason?, identityVerified?, operator?}.
func reportLoss(svc *card.Service) func(handler.Request, changeBody, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, in changeBody, a channelauth.Actor) (handler.Response, error) {
		var action card.Action
		switch in.Type {
		case "temporary":
			action = card.ActTemporaryLoss
		case "formal":
			action = card.ActFormalLoss
		default:
			return handler.Response{}, problem.Invalid("the loss was not recorded",
				problem.Field("type", "want temporary (临时挂失) or formal (正式挂失)"))
		}
		return change(req, svc, action, in, a)
	}
}

// changeStatus: POST /cards/{card}/unlock and /cancel {channel, reason?, identityVerified?, operator?}.
func changeStatus(svc *card.Service, action card.Action) func(handler.Request, changeBody, channelauth.Actor) (handler.Response, error) {
	return func(req handler.Request, in changeBody, a channelauth.Actor) (handler.Response, error) {
		if in.Type != "" {
			return handler.Response{}, problem.Invalid("the request was not carried out",
				problem.Field("type", "only the loss route takes a type"))
		}
		return change(req, svc, action, in, a)
	}
}

// change records the actor channelauth bound: a signed bank, outlet or kiosk by its app
// id; on the phone and online channels the operator the body names.
func change(req handler.Request, svc *card.Service, action card.Action, in changeBody, a channelauth.Actor) (handler.Response, error) {
	res, err := svc.Change(req.Context(), card.Request{
		Card: runtime.Param(req, "card"), Action: action, Channel: card.Channel(a.Channel), Reason: in.Reason,
		IdentityVerified: in.IdentityVerified, Actor: a.ID, RequestID: runtime.RequestID(req),
	})
	if err != nil {
		return handler.Response{}, cardProblem(err)
	}
	return runtime.JSON(http.StatusOK, res)
}

// getCard: GET /cards/{card} → status, since, temporary-loss expiry, province code.
func getCard(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		c, err := svc.Get(req.Context(), runtime.Param(req, "card"))
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		return runtime.JSON(http.StatusOK, c)
	}
}

// cardHistory: GET /cards/{card}/history → every status change, oldest first.
func cardHistory(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		h, err := svc.History(req.Context(), runtime.Param(req, "card"))
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		return runtime.JSON(http.StatusOK, map[string]any{"history": h})
	}
}

// createCard: POST /cards {cardNo, personId?, operator?}. Issuing cards is card-apply's
// job; until it does, this creates cards in status normal when local_card_issuing=true
// (development and tests), and is refused otherwise.
func createCard(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if !svc.Config.LocalIssuing {
			return handler.Response{}, problem.New(http.StatusForbidden, "forbidden", "Forbidden",
				"cards are issued by card-apply; local_card_issuing=true enables this route for development")
		}
		var in struct {
			CardNo   string `json:"cardNo"`
			PersonID string `json:"personId"`
			Operator string `json:"operator"`
		}
		if err := runtime.DecodeJSON(req, &in); err != nil {
			return handler.Response{}, err
		}
		c, err := svc.Create(req.Context(), card.NewCard{CardNo: in.CardNo, PersonID: in.PersonID, Actor: in.Operator,
			RequestID: runtime.RequestID(req)})
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		res, err := runtime.JSON(http.StatusCreated, c)
		if err == nil {
			res.Header.Set("Location", "/cards/"+c.ID)
		}
		return res, err
	}
}
