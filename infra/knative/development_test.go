package knative

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sscard/platform/infra/stack"
)

// The local e-card authority confirms a scan login for any ID number: it is for make run
// and the tests, which set sscard_development themselves. What deploys (stack.yml, with
// any deploy environment, and the Knative manifests) must never turn it on.
func TestDeployedConfigurationNeverEnablesDevelopmentParts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// With no deploy variables, and with every variable set to "true"/"local": the
	// development switch must not be reachable from stack.yml at all.
	for _, value := range []string{"", "true", "local"} {
		f, err := stack.Parse(b, func(string) string { return value })
		if err != nil {
			t.Fatal(err)
		}
		for name, fn := range f.Functions {
			if v, ok := fn.Environment["sscard_development"]; ok {
				t.Errorf("stack.yml %s sets sscard_development=%q (deploy variables %q): only make run and tests may", name, v, value)
			}
			if value == "" && fn.Environment["ecard_authority"] == "local" {
				t.Errorf("stack.yml %s enables the local e-card authority", name)
			}
		}
	}

	mb, err := os.ReadFile("services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var services int
	dec := yaml.NewDecoder(bytes.NewReader(mb))
	for {
		var d struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Env []struct{ Name, Value string } `yaml:"env"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if d.Kind != "Service" {
			continue
		}
		services++
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "sscard_development" {
					if on, _ := strconv.ParseBool(e.Value); on || e.Value != "" {
						t.Errorf("services.yaml %s sets sscard_development=%q", d.Metadata.Name, e.Value)
					}
				}
				if e.Name == "ecard_authority" && e.Value == "local" {
					t.Errorf("services.yaml %s enables the local e-card authority", d.Metadata.Name)
				}
			}
		}
	}
	if services == 0 {
		t.Fatal("services.yaml holds no Service: the check above checked nothing")
	}
}
