//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/tests/testenv"
)

// A card through the local gateway: issued, reported lost by phone, listed on the
// blacklist, unlocked online; an illegal unlock is refused naming the status; both status
// changes reach the simulated bank, which was down at first and is retried by the broker.
func TestLossReport_LossUnlockBlacklistAndBankSync(t *testing.T) {
	p := startPlatform(t, "local_card_issuing=true")
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	const fn = "/function/loss-report"
	outlet := p.register(t, "outlet-loss-01", channelauth.KindOutlet, nil)
	call := func(method, path string, body any, wantStatus int, out any) []byte {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		resp, got := p.do(t, method, fn+path, http.Header{"Content-Type": {"application/json"}}, b)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: want %d, got %d %s", method, path, wantStatus, resp.StatusCode, got)
		}
		if out != nil {
			if err := json.Unmarshal(got, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, got)
			}
		}
		return got
	}
	type cardView struct {
		CardID            string  `json:"cardId"`
		CardNo            string  `json:"cardNo"`
		Status            string  `json:"status"`
		StatusCode        string  `json:"statusCode"`
		Listed            bool    `json:"listed"`
		Expires           *string `json:"temporaryLossExpiresAt"`
		Version           int64   `json:"version"`
		BankSyncedVersion int64   `json:"bankSyncedVersion"`
	}
	type entry struct{ CardNo string }
	type delta struct {
		Version          int64
		SnapshotRequired bool
		Adds, Removes    []entry
	}
	has := func(es []entry, no string) bool {
		return slices.ContainsFunc(es, func(e entry) bool { return e.CardNo == no })
	}

	var c cardView
	call("POST", "/cards", map[string]string{"cardNo": "l00000019"}, http.StatusCreated, &c)
	if c.CardNo != "L00000019" || c.Status != "normal" || c.StatusCode != "1" || !strings.HasPrefix(c.CardID, "card-") {
		t.Fatalf("created: %+v", c)
	}
	call("POST", "/cards", map[string]string{"cardNo": "L00000019"}, http.StatusConflict, nil)

	// The bank is down when the loss is reported.
	if _, err := pool.Exec(ctx, `UPDATE bank_sim_control SET failing = true`); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Card           cardView
		From, FromCode string
	}
	call("POST", "/cards/"+c.CardNo+"/loss", map[string]any{"type": "temporary", "channel": "phone"}, http.StatusOK, &res)
	if res.Card.Status != "temporary_loss" || res.Card.StatusCode != "4" || res.From != "normal" || res.Card.Expires == nil ||
		res.Card.Version != 1 {
		t.Fatalf("temporary loss: %+v", res)
	}

	var check struct {
		Listed     bool
		Status     string
		StatusCode string
	}
	call("GET", "/blacklist/"+c.CardNo, nil, http.StatusOK, &check)
	if !check.Listed || check.Status != "temporary_loss" || check.StatusCode != "4" {
		t.Errorf("real-time check after the loss: %+v", check)
	}
	var d delta
	call("GET", "/blacklist?since=0", nil, http.StatusOK, &d)
	if !has(d.Adds, c.CardNo) || d.Version < 1 || d.SnapshotRequired {
		t.Errorf("delta since 0: %+v", d)
	}
	lostAt := d.Version

	// The broker keeps retrying the bank; let it fail a few times, then bring it back.
	testenv.Eventually(t, 30*time.Second, "the bank refusing redeliveries", func() bool {
		var refused int
		_ = pool.QueryRow(ctx, `SELECT refused FROM bank_sim_control`).Scan(&refused)
		return refused >= 2
	})
	if _, err := pool.Exec(ctx, `UPDATE bank_sim_control SET failing = false`); err != nil {
		t.Fatal(err)
	}

	call("POST", "/cards/"+c.CardID+"/unlock", map[string]any{"channel": "online"}, http.StatusOK, &res)
	if res.Card.Status != "normal" || res.Card.Listed || res.Card.Version != 2 {
		t.Fatalf("unlock: %+v", res)
	}
	// Illegal now: unlocking a card that is not lost.
	body := call("POST", "/cards/"+c.CardNo+"/unlock", map[string]any{"channel": "online"}, http.StatusConflict, nil)
	var prob map[string]any
	_ = json.Unmarshal(body, &prob)
	if prob["currentState"] != "normal" || prob["currentStateCode"] != "1" || !strings.Contains(fmt.Sprint(prob["detail"]), "normal") {
		t.Errorf("409 must name the current state: %s", body)
	}
	// Invalid input names the fields.
	body = call("POST", "/cards/"+c.CardNo+"/loss", map[string]any{"type": "temporary", "channel": "fax"}, http.StatusBadRequest, nil)
	if !strings.Contains(string(body), `"name":"channel"`) {
		t.Errorf("400 must name the channel: %s", body)
	}
	// A formal loss at the outlet (a signed caller) without the identity check is invalid.
	if r := outlet.do(t, "loss-report", "POST", "/cards/"+c.CardNo+"/loss", nil, map[string]any{"type": "formal", "channel": "outlet"}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("formal loss without identity: want 400, got %d %s", r.StatusCode, r.Body)
	}
	call("GET", "/cards/Z99999999", nil, http.StatusNotFound, nil)

	call("GET", fmt.Sprintf("/blacklist?since=%d", lostAt), nil, http.StatusOK, &d)
	if !has(d.Removes, c.CardNo) || len(d.Adds) != 0 || d.Version != lostAt+1 {
		t.Errorf("delta after the unlock: %+v", d)
	}
	call("GET", "/blacklist/"+c.CardNo, nil, http.StatusOK, &check)
	if check.Listed {
		t.Errorf("still listed after the unlock: %+v", check)
	}

	// Both changes reach the bank once it is back, in the end with the newest status.
	var bank struct {
		StatusCode    string
		StatusVersion int64
		Requests      int
	}
	testenv.Eventually(t, 60*time.Second, "the bank acknowledging both changes", func() bool {
		resp, b := p.do(t, "GET", fn+"/simulated-bank/cards/"+c.CardNo, nil, nil)
		return resp.StatusCode == 200 && json.Unmarshal(b, &bank) == nil && bank.Requests == 2
	})
	if bank.StatusCode != "1" || bank.StatusVersion != 2 {
		t.Errorf("bank: %+v", bank)
	}
	// The scheduled housekeeping (cron-connector's call) answers what it did.
	resp, b := p.do(t, "POST", fn+"/", http.Header{"X-Connector": {"cron-connector"}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"lapsed":0`) {
		t.Errorf("schedule: %d %s", resp.StatusCode, b)
	}
	call("GET", "/cards/"+c.CardNo, nil, http.StatusOK, &c)
	if c.BankSyncedVersion != c.Version || c.Status != "normal" {
		t.Errorf("card after the bank sync: %+v", c)
	}
}
