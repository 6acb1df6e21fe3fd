//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The QR carries the session id; polling needs the page's poll secret, which the QR
// does not carry and Redis keeps only as a digest. A stranger's polls change nothing:
// the page's interval is not slowed and the confirmed session's token is the page's.
func TestLogin_PollNeedsThePageSecret(t *testing.T) {
	p := startPlatform(t, "login_poll_interval=1s")
	holderID, holderName := registerPerson(t, p, "李四")
	rdb := redis.NewClient(&redis.Options{Addr: p.env.Vars["redis_addr"], Password: p.env.Secret(t, "redis-password")})
	defer rdb.Close()

	resp, body := p.do(t, "POST", "/function/qr-code/", nil, nil)
	var qr struct{ SessionID, PollSecret, QRContent string }
	if err := json.Unmarshal(body, &qr); resp.StatusCode != 201 || err != nil || len(qr.PollSecret) != 43 {
		t.Fatalf("new QR: want 201 with a pollSecret, got %d %s", resp.StatusCode, body)
	}
	if strings.Contains(qr.QRContent, qr.PollSecret) {
		t.Fatal("the QR must not carry the poll secret")
	}
	stored, err := rdb.HGetAll(context.Background(), "login:{"+qr.SessionID+"}").Result()
	if err != nil || stored["secret"] == "" {
		t.Fatalf("want the secret's digest with the session, got %v %v", stored, err)
	}
	for k, v := range stored {
		if strings.Contains(v, qr.PollSecret) {
			t.Errorf("Redis keeps the poll secret in clear (field %s)", k)
		}
	}

	p.act(t, qr.SessionID, "confirmed", holderID, holderName)
	p.pollAsStranger(t, qr.SessionID)
	after, _ := rdb.HGetAll(context.Background(), "login:{"+qr.SessionID+"}").Result()
	if after["state"] != "confirmed" || after["last"] != "" || after["interval"] != stored["interval"] {
		t.Errorf("strangers' polls must change nothing: before %v, after %v", stored, after)
	}

	// The page, with its secret, gets the token.
	resp, body = p.do(t, "GET", "/function/login-poll/"+qr.SessionID, http.Header{"X-Poll-Secret": {qr.PollSecret}}, nil)
	var got struct{ State, Token string }
	_ = json.Unmarshal(body, &got)
	if resp.StatusCode != 200 || got.State != "confirmed" || got.Token == "" {
		t.Fatalf("the page's poll: want confirmed with a token, got %d %s", resp.StatusCode, body)
	}
}
