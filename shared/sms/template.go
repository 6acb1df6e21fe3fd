package sms

import (
	"fmt"
	"slices"
	"strings"
)

// Render fills the {name} parameters of a template body. Every parameter the body names
// must be given (a half-filled SMS is worse than none); extra parameters are ignored, so
// producers may send more than one version of a template uses.
func Render(body string, params map[string]string) (string, error) {
	var out strings.Builder
	var missing []string
	rest := body
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			out.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			out.WriteString(rest)
			break
		}
		name := rest[i+1 : i+j]
		out.WriteString(rest[:i])
		if v, ok := params[name]; ok {
			out.WriteString(v)
		} else if !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		rest = rest[i+j+1:]
	}
	if len(missing) > 0 {
		return "", &MissingParamsError{Names: missing}
	}
	return out.String(), nil
}

// Params lists the parameter names a body uses, in order of first use.
func Params(body string) []string {
	var names []string
	for rest := body; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return names
		}
		if n := rest[i+1 : i+j]; !slices.Contains(names, n) {
			names = append(names, n)
		}
		rest = rest[i+j+1:]
	}
}

// MissingParamsError names the parameters a template needs and did not get.
type MissingParamsError struct{ Names []string }

func (e *MissingParamsError) Error() string {
	return fmt.Sprintf("template parameters missing: %s", strings.Join(e.Names, ", "))
}
