package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/kiosk"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of kiosk: registry, heartbeat, self-check, logs and remote
// commands for self-service terminals (001 2.1–2.3, 003 5.2, 004 §3(24)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("kiosk")
	r.OnEvent(events.KioskHeartbeat, d.Postgres, recordHeartbeat)
	r.Get("/kiosks/{id}", status(d))
	r.NotBuilt("POST", "/kiosks", "kiosk registration", "004 §3(24)")
	r.NotBuilt("POST", "/kiosks/{id}/commands", "remote kiosk commands", "001 2.3")
	r.NotBuilt("POST", "/kiosks/{id}/self-checks", "kiosk self-check reports", "003 5.2")
	r.NotBuilt("POST", "/kiosks/{id}/logs", "kiosk log upload", "001 2.2")
	return r, nil
}

func recordHeartbeat(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	hb, err := events.Decode[events.KioskHeartbeatData](ev)
	if err != nil {
		return problem.Invalid("heartbeat data: " + err.Error())
	}
	return kiosk.RecordHeartbeat(ctx, tx, hb, ev.Source(), ev.ID())
}

func status(d *platform.Deps) runtime.HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		s, err := kiosk.Lookup(req.Context(), d.Postgres, runtime.Param(req, "id"), time.Now())
		if errors.Is(err, kiosk.ErrUnknown) {
			return handler.Response{}, problem.NotFound("no kiosk with this id has reported")
		}
		if err != nil {
			return handler.Response{}, err
		}
		return runtime.JSON(http.StatusOK, s)
	}
}
