package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/application"
	"github.com/sscard/platform/shared/problem"
)

// Parts of an application sent with its photo as multipart/form-data (an H5 form's
// FormData, or a counter's client): "application" is the JSON object POST /applications
// takes, "photo" the JPEG.
const (
	partApplication = "application"
	partPhoto       = "photo"
	maxJSONPart     = 64 << 10
)

// isMultipart reports whether the request body is multipart/form-data, and its boundary.
func isMultipart(req handler.Request) (string, bool) {
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", false
	}
	return params["boundary"], true
}

// readApplicationForm reads an application and its photo from a multipart body.
func readApplicationForm(body []byte, boundary string) (application.Request, *application.PhotoUpload, error) {
	var in application.Request
	var photo *application.PhotoUpload
	seen := false
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, nil, problem.Invalid("the multipart body cannot be read")
		}
		switch p.FormName() {
		case partApplication:
			b, err := io.ReadAll(io.LimitReader(p, maxJSONPart+1))
			if err != nil || len(b) > maxJSONPart {
				return in, nil, problem.Invalid("the application part cannot be read",
					problem.Field(partApplication, "must be a JSON object of at most 64 KB"))
			}
			if err := json.Unmarshal(b, &in); err != nil {
				return in, nil, problem.Invalid("the application part is not the expected JSON object",
					problem.Field(partApplication, "must be the JSON object POST /applications takes"))
			}
			seen = true
		case partPhoto:
			// One byte past the limit, so CheckPhoto answers an oversized photo with 413.
			b, err := io.ReadAll(io.LimitReader(p, application.MaxPhotoBytes+1))
			if err != nil {
				return in, nil, problem.Invalid("the photo part cannot be read", problem.Field(partPhoto, "is cut short"))
			}
			photo = &application.PhotoUpload{ContentType: p.Header.Get("Content-Type"), Body: b}
		default:
			return in, nil, problem.Invalid("the multipart body has an unknown part",
				problem.Field(p.FormName(), "unknown part: send "+partApplication+" and "+partPhoto))
		}
	}
	if !seen {
		return in, nil, problem.Invalid("the application part is missing", problem.Field(partApplication, "is required"))
	}
	if photo == nil {
		return in, nil, problem.Invalid("the photo part is missing",
			problem.Field(partPhoto, "is required in a multipart application; without a photo, send the JSON object alone"))
	}
	return in, photo, nil
}
