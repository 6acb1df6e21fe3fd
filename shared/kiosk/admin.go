package kiosk

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
)

// KindAdmin is the caller kind (callsign App.Kind) of a kiosk administrator: an operator
// console of the 人社 bureau that signs its calls. Its region is in kiosk_admins.
const KindAdmin = channelauth.KindAdmin

// Admin is an authenticated administrator and the region it manages.
type Admin struct {
	ID     string // callsign app id
	Region string
}

// Caller is who signed a request, as callsign verified it.
type Caller struct {
	AppID string
	Kind  string
	KeyID string
}

// adminMAC binds an admin row under the caller registry's MAC key, as callsign does for
// its own rows: the region is access-control data.
func adminMAC(macKey []byte, appID, region string) []byte {
	return gm.HMAC(macKey, gm.LengthPrefixed("kiosk_admins/v1", appID, region))
}

// PutAdmin records the region of an admin caller (tooling and tests; the caller itself
// is registered in callsign with kind admin).
func PutAdmin(ctx context.Context, db callsign.DB, macKey []byte, appID, region string) error {
	if !ValidRegion(region) {
		return errors.New("kiosk: region must be a 6-digit division code")
	}
	_, err := db.Exec(ctx, `INSERT INTO kiosk_admins (app_id, region_code, mac) VALUES ($1, $2, $3)
		ON CONFLICT (app_id) DO UPDATE SET region_code = $2, mac = $3, updated_at = now()`,
		appID, region, adminMAC(macKey, appID, region))
	return err
}

// notAdmin is the answer to a signed caller that is not a kiosk administrator.
func notAdmin() *problem.Problem {
	return problem.New(http.StatusForbidden, "not-kiosk-admin", "Not a kiosk administrator",
		"only a signed caller of kind admin with a registered region manages kiosks")
}

// AuthorizeAdmin returns the admin behind caller: kind admin and a kiosk_admins row whose
// MAC verifies. The region comes from that row, never from the request.
func (s *Service) AuthorizeAdmin(ctx context.Context, c Caller) (Admin, error) {
	if c.Kind != KindAdmin {
		return Admin{}, notAdmin()
	}
	var region string
	var mac []byte
	err := s.DB.QueryRow(ctx, `SELECT region_code, mac FROM kiosk_admins WHERE app_id = $1`, c.AppID).Scan(&region, &mac)
	if errors.Is(err, pgx.ErrNoRows) {
		return Admin{}, notAdmin()
	}
	if err != nil {
		return Admin{}, err
	}
	if !gm.HMACEqual(mac, adminMAC(s.MACKey, c.AppID, region)) {
		s.log().Error("kiosk admin row fails its MAC check; refused", "app_id", c.AppID)
		return Admin{}, notAdmin()
	}
	return Admin{ID: c.AppID, Region: region}, nil
}
