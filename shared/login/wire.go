package login

import (
	"errors"
	"fmt"
	"time"

	"github.com/sscard/platform/shared/ecard"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/platform"
)

// Settings (environment; defaults in brackets):
//
//	login_qr_validity    how long a login QR is valid [120s]
//	login_poll_interval  the poll interval the page is told [2s]
//	login_token_ttl      session token lifetime [30m]
//	ecard_authority      which e-card platform adapter; no default. "local" is the
//	                     built-in local e-card authority, which confirms a login for any
//	                     ID number: it starts only with sscard_development=true. No other
//	                     adapter exists yet: unset or any other value refuses to start
//	                     rather than run unverified.
//	sscard_development   [false] true only in development and tests (make run, tests/);
//	                     stack.yml and the Knative manifests never set it (test-checked)
//	ecard_app_url        what login QRs encode for the e-card app [essc://login]
//	phone_change_max_attempts  wrong tries (code, ID number or old phone) that void a
//	                     phone-change code [5]
//
// Secrets: ecard-platform-public-key (always), ecard-local-private-key (local only).

// OpenSessions returns the session store with the configured timing (login-poll needs
// no e-card keys).
func OpenSessions(d *platform.Deps) (*Sessions, error) {
	if d.Redis == nil {
		return nil, errors.New("scan login needs Redis")
	}
	cfg, err := configFrom(d)
	if err != nil {
		return nil, err
	}
	return NewSessions(d.Redis, cfg), nil
}

func configFrom(d *platform.Deps) (Config, error) {
	cfg := Config{
		Validity: d.Env.Duration("login_qr_validity", DefaultConfig.Validity),
		Interval: d.Env.Duration("login_poll_interval", DefaultConfig.Interval),
		TokenTTL: d.Env.Duration("login_token_ttl", DefaultConfig.TokenTTL),
	}
	return cfg, d.Env.Err()
}

// DevelopmentSetting names the switch that allows development-only parts such as the
// local e-card authority.
const DevelopmentSetting = "sscard_development"

// authorityAllowed refuses to start without an adapter, and with the local authority
// outside development: it confirms a scan login for any ID number anyone names.
func authorityAllowed(authority string, development bool) error {
	switch {
	case authority == "":
		return errors.New("ecard_authority is not set: no e-card platform adapter; " +
			"for development and tests set ecard_authority=local and " + DevelopmentSetting + "=true (see docs/security.md)")
	case authority == "local" && !development:
		return errors.New("ecard_authority=local is the local e-card authority, which confirms a login for any ID number: " +
			"refusing to start without " + DevelopmentSetting + "=true (development and tests only)")
	}
	return nil
}

// Open assembles the scan-login flow of a function instance. The local authority is
// returned too when configured, so the function can expose its "phone" endpoint.
func Open(d *platform.Deps, people Registry) (*Flow, *ecard.Local, error) {
	sessions, err := OpenSessions(d)
	if err != nil {
		return nil, nil, err
	}
	authority := d.Env.String("ecard_authority", "")
	development := d.Env.Bool(DevelopmentSetting, false)
	appURL := d.Env.String("ecard_app_url", "essc://login")
	if err := d.Env.Err(); err != nil {
		return nil, nil, err
	}
	if err := authorityAllowed(authority, development); err != nil {
		return nil, nil, err
	}
	pubPEM, err := d.Secrets.Read(ecard.PlatformKeySecret)
	if err != nil {
		return nil, nil, err
	}
	pub, err := ecard.ParsePublicKey(pubPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ecard.PlatformKeySecret, err)
	}
	flow := &Flow{Sessions: sessions, Verify: ecard.Verifier{Key: pub, MaxAge: 5 * time.Minute},
		People: people}
	switch authority {
	case "local":
		privPEM, err := d.Secrets.Read(ecard.LocalKeySecret)
		if err != nil {
			return nil, nil, err
		}
		priv, err := ecard.ParsePrivateKey(privPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ecard.LocalKeySecret, err)
		}
		local := ecard.NewLocal(d.Redis, priv, appURL)
		flow.Platform = local
		d.Log.Warn("scan login uses the LOCAL e-card authority (development/test only)")
		return flow, local, nil
	default:
		return nil, nil, fmt.Errorf("ecard_authority=%q: no such e-card platform adapter", authority)
	}
}

// OpenPhoneChange wires the phone change: the person register, the audit log (with its
// checkpoint key when mounted) and, until sms-alert delivers codes, the local code sender.
func OpenPhoneChange(d *platform.Deps, sessions *Sessions) (*PhoneChange, error) {
	people, err := person.Open(d.Postgres, d.Secrets)
	if err != nil {
		return nil, err
	}
	maxAttempts := d.Env.Int("phone_change_max_attempts", 5, 1, 20)
	if err := d.Env.Err(); err != nil {
		return nil, err
	}
	return &PhoneChange{Sessions: sessions, People: people, Pool: d.Postgres, Codes: LocalCodes{RDB: d.Redis}, Audit: d.Audit,
		MaxAttempts: int64(maxAttempts)}, nil
}
