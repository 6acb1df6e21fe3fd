package knative

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/infra/stack"
)

type doc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Schedule string `yaml:"schedule"`
		Filter   struct {
			Attributes map[string]string `yaml:"attributes"`
		} `yaml:"filter"`
		Subscriber struct {
			Ref struct{ Kind, Name string } `yaml:"ref"`
		} `yaml:"subscriber"`
		Sink struct {
			Ref struct{ Kind, Name string } `yaml:"ref"`
		} `yaml:"sink"`
		Delivery struct {
			DeadLetterSink struct {
				Ref struct{ Kind, Name string } `yaml:"ref"`
			} `yaml:"deadLetterSink"`
		} `yaml:"delivery"`
		Template struct {
			Spec struct {
				ContainerConcurrency int `yaml:"containerConcurrency"`
				SecurityContext      struct {
					RunAsUser int `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Resources struct {
						Limits map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					SecurityContext struct {
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
					} `yaml:"securityContext"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func loadStack(t *testing.T) *stack.File {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := stack.Parse(b, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestManifestsUpToDate(t *testing.T) {
	files, err := Generate(loadStack(t), events.Routes())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("infra/knative/%s is stale or missing: run go run ./infra/cmd/genknative (make knative)", name)
		}
	}
}

func TestManifestsAgreeWithStackAndRoutes(t *testing.T) {
	f := loadStack(t)
	byKind := map[string][]doc{}
	for _, name := range []string{"services.yaml", "schedules.yaml", "eventing.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d doc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			byKind[d.Kind] = append(byKind[d.Kind], d)
		}
	}
	services := map[string]int{}
	for _, d := range byKind["Service"] {
		if d.Metadata.Name == DeadLetterService {
			continue // not a function: it emits nothing
		}
		services[d.Metadata.Name]++
		if d.Metadata.Labels["app.kubernetes.io/part-of"] != "sscard" {
			t.Errorf("Service %s: no part-of label, so the SinkBinding gives it no K_SINK", d.Metadata.Name)
		}
	}
	for _, name := range f.Names() {
		if services[name] != 1 {
			t.Errorf("function %s: want exactly one Service, got %d", name, services[name])
		}
		if s, ok := f.Functions[name].Schedule(); ok {
			found := false
			for _, p := range byKind["PingSource"] {
				found = found || (p.Spec.Sink.Ref.Name == name && p.Spec.Schedule == s)
			}
			if !found {
				t.Errorf("function %s: want a PingSource with schedule %q", name, s)
			}
		}
	}
	if len(services) != len(f.Names()) {
		t.Errorf("want %d Services, got %d", len(f.Names()), len(services))
	}
	triggers := map[[2]string]bool{}
	for _, tr := range byKind["Trigger"] {
		if _, ok := f.Functions[tr.Spec.Subscriber.Ref.Name]; !ok {
			t.Errorf("trigger %s: subscriber %q is not a function", tr.Metadata.Name, tr.Spec.Subscriber.Ref.Name)
		}
		triggers[[2]string{tr.Spec.Filter.Attributes["type"], tr.Spec.Subscriber.Ref.Name}] = true
	}
	for _, r := range events.Routes() {
		if !triggers[[2]string{string(r.Type), r.Consumer}] {
			t.Errorf("route %s → %s has no Trigger", r.Type, r.Consumer)
		}
	}
	if len(byKind["Trigger"]) != len(events.Routes()) {
		t.Errorf("want one Trigger per route (%d), got %d", len(events.Routes()), len(byKind["Trigger"]))
	}
	// Nothing the Broker gives up on is dropped.
	for _, d := range append(byKind["Trigger"], byKind["Broker"]...) {
		if d.Spec.Delivery.DeadLetterSink.Ref.Name != DeadLetterService {
			t.Errorf("%s %s: want delivery.deadLetterSink → %s", d.Kind, d.Metadata.Name, DeadLetterService)
		}
	}
	for _, d := range byKind["Broker"] {
		if d.Metadata.Annotations["eventing.knative.dev/broker.class"] == "" {
			t.Errorf("Broker %s: want a production broker class", d.Metadata.Name)
		}
	}
	for _, d := range byKind["Service"] {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Resources.Limits["memory"] == "" || c.SecurityContext.AllowPrivilegeEscalation == nil {
				t.Errorf("Service %s: want resources and a securityContext", d.Metadata.Name)
			}
		}
		if d.Spec.Template.Spec.ContainerConcurrency > 1000 || d.Spec.Template.Spec.SecurityContext.RunAsUser == 0 {
			t.Errorf("Service %s: containerConcurrency ≤ 1000 and a numeric runAsUser wanted", d.Metadata.Name)
		}
	}
	if len(byKind["Broker"]) != 1 || len(byKind["SinkBinding"]) != 1 {
		t.Errorf("want one Broker and one SinkBinding, got %d and %d", len(byKind["Broker"]), len(byKind["SinkBinding"]))
	}
}

func TestTriggerNameIsDNSSafe(t *testing.T) {
	for _, c := range []struct {
		r    events.Route
		want string
	}{
		{events.Route{Type: events.CardStatusChanged, Consumer: "sms-alert"}, "sms-alert-card-status-changed"},
		{events.Route{Type: "cn.sscard.kiosk.version", Consumer: "kiosk"}, "kiosk-kiosk-version"},
		{events.Route{Type: "cn.sscard.card_issued.v12", Consumer: "kiosk"}, "kiosk-card-issued"},
	} {
		if got := TriggerName(c.r); got != c.want {
			t.Errorf("%s: want %q, got %q", c.r.Type, c.want, got)
		}
	}
	long := TriggerName(events.Route{Type: "cn.sscard.a.very.long.type.name.that.goes.on.and.on.and.on.v1", Consumer: "photo-audit-alert"})
	if len(long) > 63 || long[len(long)-1] == '-' {
		t.Errorf("want ≤ 63 chars not ending in '-', got %q", long)
	}
}

func TestGenerateRejectsBadRoutes(t *testing.T) {
	f := loadStack(t)
	if _, err := Generate(f, []events.Route{{Type: events.SMSRequested, Consumer: "nobody"}}); err == nil {
		t.Error("route to an unknown consumer: want an error")
	}
	long := "cn.sscard." + strings.Repeat("long.", 13) // 65 characters before the suffix
	_, err := Generate(f, []events.Route{
		{Type: events.Type(long + "first.v1"), Consumer: "kiosk"},
		{Type: events.Type(long + "second.v1"), Consumer: "kiosk"},
	})
	if err == nil {
		t.Error("two routes truncated to one Trigger name: want an error")
	}
}
