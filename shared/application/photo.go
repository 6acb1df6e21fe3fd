package application

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"strings"
)

// Photo limits. The card photo is the standard ID photo (358×441 px, 26×32 mm at 350 dpi,
// as the police photo service issues it); other ID-photo sizes up to 2 inch at 600 dpi are
// accepted and kept at their size. The stripped photo (stripJPEG) is what is stored.
const (
	// MaxPhotoBytes caps the upload: a 358×441 photo is 20–60 KB at normal quality.
	MaxPhotoBytes = 200 << 10
	// MinPhotoWidth × MinPhotoHeight: the smallest acceptable photo (a 1-inch photo at
	// 300 dpi is 295×413; below this, faces are too coarse for audit and face match).
	MinPhotoWidth, MinPhotoHeight = 260, 320
	// MaxPhotoWidth × MaxPhotoHeight: the largest (2 inch at 600 dpi, rounded).
	MaxPhotoWidth, MaxPhotoHeight = 1200, 1600
	// MinAspect and MaxAspect bound height/width, in thousandths: 358×441 is 1.232, 1-inch
	// and 2-inch photos are 1.40; a landscape or square image is not an ID photo.
	MinAspect, MaxAspect = 1150, 1450
)

// Photo is an accepted photo, rewritten without every metadata segment (EXIF with GPS
// position and device, XMP, comments, thumbnails) and without any bytes smuggled after
// the image; its pixels are the upload's.
type Photo struct {
	JPEG   []byte
	SHA256 string // of JPEG, hex
	Width  int
	Height int
}

// PhotoError is a photo rejected with a reason the applicant can act on.
type PhotoError struct {
	Status int    // 400, 413 or 415
	Code   string // format, size, dimensions, aspect, corrupt
	Reason string
}

func (e *PhotoError) Error() string { return "photo: " + e.Reason }

func photoErr(status int, code, format string, args ...any) *PhotoError {
	return &PhotoError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// CheckPhoto validates an uploaded photo and strips it to the image alone: the segment
// structure is checked and rewritten (stripJPEG), and every block of the result is
// entropy-decoded (verifyJPEG), so what is stored is proven to draw without drawing it;
// a JPEG the verifier does not handle (progressive, say) is decoded in full instead. (It
// used to be decoded and encoded again, which cost four fifths of card-apply's CPU and
// degraded the photo a little each time; then decoded in full, still half of it.)
// contentType is the request's Content-Type ("" is taken as image/jpeg).
func CheckPhoto(contentType string, b []byte) (Photo, error) {
	if ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0])); ct != "" && ct != "image/jpeg" && ct != "image/jpg" {
		return Photo{}, photoErr(http.StatusUnsupportedMediaType, "format", "Content-Type must be image/jpeg")
	}
	switch {
	case len(b) == 0:
		return Photo{}, photoErr(http.StatusBadRequest, "size", "the photo is empty")
	case len(b) > MaxPhotoBytes:
		return Photo{}, photoErr(http.StatusRequestEntityTooLarge, "size", "the photo is %d bytes; at most %d bytes (200 KB) are accepted", len(b), MaxPhotoBytes)
	}
	if len(b) < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF {
		return Photo{}, photoErr(http.StatusUnsupportedMediaType, "format", "the photo must be a JPEG image; this is %s", sniff(b))
	}
	// Dimensions from the header first: a small file may declare a huge image.
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Photo{}, photoErr(http.StatusBadRequest, "corrupt", "the JPEG header cannot be read (%s)", decodeReason(err))
	}
	if err := checkDimensions(cfg.Width, cfg.Height); err != nil {
		return Photo{}, err
	}
	clean, err := stripJPEG(b)
	if err != nil {
		return Photo{}, photoErr(http.StatusBadRequest, "corrupt", "the JPEG file is damaged (%s)", decodeReason(err))
	}
	w, h, err := verifyJPEG(clean)
	if errors.Is(err, errVerifyUnsupported) {
		var img image.Image
		if img, err = jpeg.Decode(bytes.NewReader(clean)); err == nil {
			w, h = img.Bounds().Dx(), img.Bounds().Dy()
		}
	}
	if err != nil {
		return Photo{}, photoErr(http.StatusBadRequest, "corrupt", "the JPEG image cannot be decoded (%s)", decodeReason(err))
	}
	sum := sha256.Sum256(clean)
	return Photo{JPEG: clean, SHA256: hex.EncodeToString(sum[:]), Width: w, Height: h}, nil
}

func checkDimensions(w, h int) error {
	if w < MinPhotoWidth || h < MinPhotoHeight {
		return photoErr(http.StatusBadRequest, "dimensions", "the photo is %d×%d px; at least %d×%d px are required (358×441 is the standard)", w, h, MinPhotoWidth, MinPhotoHeight)
	}
	if w > MaxPhotoWidth || h > MaxPhotoHeight {
		return photoErr(http.StatusBadRequest, "dimensions", "the photo is %d×%d px; at most %d×%d px are accepted (358×441 is the standard)", w, h, MaxPhotoWidth, MaxPhotoHeight)
	}
	if a := h * 1000 / w; a < MinAspect || a > MaxAspect {
		return photoErr(http.StatusBadRequest, "aspect", "the photo must be portrait with height/width between 1.15 and 1.45 (358×441 is 1.23); this one is %d.%02d", a/1000, a%1000/10)
	}
	return nil
}

func decodeReason(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// sniff names a common image format from its magic bytes.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG")):
		return "a PNG image"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "a GIF image"
	case bytes.HasPrefix(b, []byte("BM")):
		return "a BMP image"
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "a WebP image"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return "a HEIC/HEIF or MP4 file"
	case bytes.HasPrefix(b, []byte("%PDF")):
		return "a PDF document"
	}
	if _, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
		return "another image format"
	}
	return "not an image format we recognise"
}
