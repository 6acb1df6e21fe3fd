package main

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/platform"
)

//go:embed static/index.html
var pageHTML string

// page is the H5 login page, rendered once per instance with the endpoints it calls:
//
//	login_page_qr_url    base URL of this function as the browser sees it [/function/qr-code/]
//	login_page_poll_url  base URL of login-poll as the browser sees it [/function/login-poll/]
type page struct{ body []byte }

func newPage(d *platform.Deps) (*page, error) {
	t, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, map[string]string{
		"QRURL":   d.Env.String("login_page_qr_url", "/function/qr-code/"),
		"PollURL": d.Env.String("login_page_poll_url", "/function/login-poll/"),
	})
	return &page{body: buf.Bytes()}, err
}

func (p *page) serve(handler.Request) (handler.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The page loads nothing from elsewhere; say so to the browser.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	return handler.Response{StatusCode: http.StatusOK, Body: p.body, Header: h}, nil
}
