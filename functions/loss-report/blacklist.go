package main

import (
	"net/http"
	"net/url"
	"strconv"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// blacklistDelta: GET /blacklist?since=N[&limit=M] → the adds and removes after version N
// (collapsed per card), the version they bring the caller to, and snapshotRequired when N
// is older than the kept changes or newer than the current version.
func blacklistDelta(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		q, err := url.ParseQuery(req.QueryString)
		if err != nil {
			return handler.Response{}, problem.Invalid("the query string cannot be read")
		}
		var bad []problem.InvalidParam
		since, err := strconv.ParseInt(q.Get("since"), 10, 64)
		if err != nil || since < 0 {
			bad = append(bad, problem.Field("since", "want the blacklist version you hold (0 or more)"))
		}
		limit := 0
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > card.MaxDeltaLimit {
				bad = append(bad, problem.Field("limit", "want 1 to "+strconv.Itoa(card.MaxDeltaLimit)))
			}
		}
		if len(bad) > 0 {
			return handler.Response{}, problem.Invalid("the delta cannot be computed", bad...)
		}
		d, err := svc.Delta(req.Context(), since, limit)
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		return runtime.JSON(http.StatusOK, d)
	}
}

// blacklistSnapshot: GET /blacklist/snapshot → every listed card and the version.
func blacklistSnapshot(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		s, err := svc.Snapshot(req.Context())
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		return runtime.JSON(http.StatusOK, s)
	}
}

// blacklistCheck: GET /blacklist/{cardNo} → listed or not, now.
func blacklistCheck(svc *card.Service) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		c, err := svc.Check(req.Context(), runtime.Param(req, "cardNo"))
		if err != nil {
			return handler.Response{}, cardProblem(err)
		}
		return runtime.JSON(http.StatusOK, c)
	}
}
